"""Any tabular dataset, end to end: a three-class CSV and a regression CSV (scikit-learn's
bundled wine and diabetes data) released with make (once each, by the shared fixtures of
conftest.py), installed from the index into a fresh venv, predicted on raw rows (API and CLI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes

from tests.helpers import VENV, assert_clean_error, consumer_env, copy_repo, edit_config, index_env, make, pipeline, run
from tests.integration.conftest import WINE_LABELS, configure, dataset_toml
from tests.integration.test_versioning_rules import release_notes

pytestmark = pytest.mark.integration


@pytest.fixture
def clone(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    env = index_env(tmp_path)
    yield repo, env, tmp_path
    pipeline(repo, env, "index-stop", check=False)


def install(env: dict, version: str, venv: Path) -> Path:
    """A fresh uv venv with mymodel==version from the test index; returns its python."""
    uv, consumer = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink")
    run([uv, "venv", "--quiet", "--python", sys.executable, venv], env=consumer)
    python = venv / "bin" / "python"
    run([uv, "pip", "install", "--quiet", "--python", python, "--index-url",
         f"http://127.0.0.1:{env['INDEX_PORT']}/simple/", f"mymodel=={version}"], env=consumer)
    return python


def consumer(python: Path, *args: str, stdin: str | None = None) -> str:
    return run([python, *args], env=consumer_env(), input=stdin, cwd=python.parent).stdout


def predicted(python: Path, model: str, rows: list[dict]) -> list[dict]:
    """mymodel.predict on raw rows in the consumer venv, as records (plus the column dtypes)."""
    return json.loads(consumer(python, "-c", "import json, mymodel\n"
                               f"result = mymodel.predict({model!r}, {rows!r})\n"
                               "print(json.dumps({'records': result.to_dict(orient='records'),"
                               " 'dtypes': {c: str(t) for c, t in result.dtypes.items()}}))"))


def model_card(python: Path) -> str:
    return consumer(python, "-c", "import importlib.metadata as m; print(m.metadata('mymodel').get_payload())")


def test_a_three_class_csv_releases_models_predicting_one_of_its_labels(wine_release, tmp_path):
    env, frame, tmp = wine_release.env, wine_release.frame, tmp_path
    assert "released mymodel 1.1.1+wine" in wine_release.output

    python = install(env, "1.1.1+wine", tmp / "venv")
    rows = frame.drop(columns="target").iloc[[0, 60, 140]].to_dict(orient="records")  # one of each class
    result = predicted(python, "SVC", rows)
    labels = sorted(WINE_LABELS.values())
    assert list(result["dtypes"]) == ["prediction"] + [f"probability_{label}" for label in labels]
    assert [r["prediction"] for r in result["records"]] == ["barolo", "grignolino", "barbera"]
    for record in result["records"]:
        assert sum(record[f"probability_{label}"] for label in labels) == pytest.approx(1.0)
    csv_rows = tmp / "rows.csv"
    frame.drop(columns="target").iloc[[0, 60, 140]].to_csv(csv_rows, index=False)
    cli = consumer(python, "-m", "mymodel", "predict", "--model", "SVC", "--input", str(csv_rows))
    assert cli.splitlines()[0] == "prediction," + ",".join(f"probability_{label}" for label in labels)
    assert [line.split(",")[0] for line in cli.splitlines()[1:]] == ["barolo", "grignolino", "barbera"]

    info = consumer(python, "-m", "mymodel", "info")
    assert "classification: predicts 'target': one of barbera, barolo, grignolino" in info
    assert all(key in info for key in ("accuracy", "roc_auc", "f1", "log_loss", "cv_accuracy_mean"))
    assert "Task: classification: classifiers predicting `target`, one of barbera, barolo, grignolino" in model_card(python)
    meta = json.loads(consumer(python, "-c", "import json, mymodel; print(json.dumps(mymodel.metadata('SVC')))"))
    assert meta["task"] == "classification" and meta["classes"] == labels


def test_a_regression_csv_releases_regressors_predicting_numbers(diabetes_release, tmp_path):
    repo, env, frame, tmp = diabetes_release.repo, diabetes_release.env, diabetes_release.frame, tmp_path
    # task unset: refused, the fix named
    assert_clean_error(diabetes_release.refused, "is numeric with", 'set [dataset] task = "regression"')
    assert "released mymodel 1.1.1+diabetes" in diabetes_release.output
    assert make(repo, "released", env).stdout.strip() == "1.1.1+diabetes"  # the docs' V=$(make -s released)

    python = install(env, "1.1.1+diabetes", tmp / "venv")
    raw = frame.drop(columns="target").iloc[:4]
    models = json.loads(consumer(python, "-c", "import json, mymodel; print(json.dumps(mymodel.list_models()))"))
    assert models == ["HistGradientBoostingRegressor", "RandomForestRegressor", "Ridge"]
    result = predicted(python, "Ridge", raw.to_dict(orient="records"))
    assert result["dtypes"] == {"prediction": "float64"}
    import joblib  # the trained model in the clone: the installed one must answer the same

    local = joblib.load(repo / "src/mymodel/models/Ridge/model.joblib").predict(raw)
    assert [r["prediction"] for r in result["records"]] == pytest.approx(list(local), abs=1e-9)
    cli = consumer(python, "-m", "mymodel", "predict", "--model", "Ridge", "--input-format", "jsonl",
                   "--output-format", "jsonl", stdin="\n".join(json.dumps(r) for r in raw.to_dict(orient="records")))
    assert [json.loads(line)["prediction"] for line in cli.splitlines()] == pytest.approx(list(local), abs=1e-9)

    info = consumer(python, "-m", "mymodel", "info")
    assert "regression: predicts 'target' (progression points)" in info
    header = next(line for line in info.splitlines() if line.startswith("model"))
    assert header.split() == ["model", "r2", "rmse", "mae", "cv_r2_mean"]
    card = model_card(python)
    assert "Task: regression: regressors predicting the number `target`, in progression points" in card
    assert "| model | estimator | R² | RMSE | MAE | CV R² |" in card
    meta = json.loads(consumer(python, "-c", "import json, mymodel; print(json.dumps(mymodel.metadata('Ridge')))"))
    assert meta["task"] == "regression" and meta["target_units"] == "progression points" and "classes" not in meta
    assert set(meta["metrics"]) == {"r2", "mae", "rmse", "cv_r2_mean", "cv_r2_std"}
    listed = make(repo, "versions", env).stdout  # regressors are listed by their R²
    assert "Ridge r2" in listed.splitlines()[0] and f"{meta['metrics']['r2']:.4f}" in listed


def test_the_regression_gate_compares_the_configured_metric(clone):
    repo, env, tmp = clone
    frame = load_diabetes(as_frame=True, scaled=False).frame
    csv = tmp / "diabetes.csv"
    frame.to_csv(csv, index=False)
    gate = '[release]\ngate_metric = "rmse"\nmax_increase = 100.0\n\n[models.Ridge]\nestimator = "Ridge"\nalpha = 1.0\n'
    configure(repo, dataset_toml(csv, "diabetes", frame, 'task = "regression"', gate))
    make(repo, "release", env, f"DATA_FILE={csv}")

    # Another split seed: both versions rescored on the rows both splits held out, by RMSE.
    edit_config(repo, "seed = 0", "seed = 3")
    seeded = make(repo, "release", env, f"DATA_FILE={csv}").stdout
    table = seeded.split("rmse against 1.1.1+diabetes:", 1)[1].split("==>", 1)[0]
    (row,) = [line for line in table.splitlines() if line.startswith("Ridge")]
    assert "rows both splits held out (the split changed)" in row and "<-" not in row

    # A much worse model on the same rows: RMSE rises by more than allowed.
    edit_config(repo, "max_increase = 100.0", "max_increase = 0.5")
    edit_config(repo, "alpha = 1.0", "alpha = 1000000.0")
    refused = make(repo, "release", env, f"DATA_FILE={csv}", check=False)
    assert_clean_error(refused, "rmse rose by more than 0.5 against 1.1.2+diabetes for Ridge", "raise max_increase")
    assert "<- increase" in refused.stdout
    forced = make(repo, "release", env, f"DATA_FILE={csv}", "FORCE=1").stdout
    assert "released mymodel 1.1.3+diabetes" in forced
    overridden = release_notes(repo, "1.1.3+diabetes")["gate_overridden"]
    assert overridden == {"against": "1.1.2+diabetes", "models": ["Ridge"], "max_rmse_increase": 0.5}
