"""The model contract on a package installed from the index: metadata without
unpickling, the environment check, integrity before unpickling, schema errors, the CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import VENV, consumer_env, run

pytestmark = pytest.mark.integration
ROW = {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"}


@pytest.fixture()
def installed(released, tmp_path):
    """A fresh uv venv with mymodel 1.1.2+titanic from the index; returns its python."""
    uv, env = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never")
    run([uv, "venv", "--quiet", "--python", sys.executable, tmp_path / "venv"], env=env)
    python = tmp_path / "venv/bin/python"
    run([uv, "pip", "install", "--quiet", "--python", python, "--index-url", released.simple_url,
         "mymodel==1.1.2+titanic"], env=env)
    return python


def py(python: Path, code: str, check: bool = True, stdin: str | None = None):
    return run([python, "-c", code], env=consumer_env(), check=check, input=stdin, cwd=python.parent)


def package_dir(python: Path) -> Path:
    return Path(py(python, "import mymodel, os; print(os.path.dirname(mymodel.__file__))").stdout.strip())


def test_metadata_is_read_without_importing_scikit_learn_or_joblib(installed):
    out = py(installed, "import json, sys, mymodel\n"
                        "meta = mymodel.metadata('SVC'); whole = mymodel.metadata()\n"
                        "print(json.dumps({'meta': meta, 'models': sorted(whole['models']), 'requires': whole['requires'],"
                        " 'loaded': [m for m in ('sklearn', 'joblib', 'scipy') if m in sys.modules]}))").stdout
    report = json.loads(out)
    assert report["loaded"] == []
    meta = report["meta"]
    assert meta["name"] == "SVC" and meta["package_version"] == "1.1.2+titanic" and meta["data_tag"] == "titanic"
    assert set(meta["metrics"]) == {"accuracy", "roc_auc", "f1", "log_loss", "cv_accuracy_mean", "cv_accuracy_std"}
    assert meta["data"]["rows"] == 1309 and len(meta["data"]["sha256"]) == 64 and meta["data"]["split"]["seed"] == 0
    assert [c["name"] for c in meta["input_schema"]["columns"]] == ["pclass", "age", "sibsp", "parch", "fare", "sex", "embarked"]
    sex = next(c for c in meta["input_schema"]["columns"] if c["name"] == "sex")
    assert sex["categories"] == ["female", "male"] and sex["allows_missing"] is True
    assert meta["classes"] == ["0", "1"]
    assert set(meta["training_environment"]) == {"python", "scikit-learn", "numpy", "scipy", "pandas", "joblib"}
    assert len(meta["git"]["commit"]) == 40 and meta["git"]["dirty"] is False
    assert report["models"] == ["LogisticRegression", "RandomForestClassifier", "SVC"]
    assert report["requires"]["scikit-learn"].startswith(">=")


def test_validate_passes_then_fails_when_the_pins_exclude_the_installed_scikit_learn(installed):
    ok = run([installed, "-m", "mymodel", "validate"], env=consumer_env())
    assert "scikit-learn" in ok.stdout and "NO" not in ok.stdout
    manifest = package_dir(installed) / "models" / "manifest.json"
    document = json.loads(manifest.read_text())
    document["requires"]["scikit-learn"] = ">=99.0,<99.1"  # as if trained with a future scikit-learn
    manifest.write_text(json.dumps(document))
    bad = run([installed, "-m", "mymodel", "validate"], env=consumer_env(), check=False)
    assert bad.returncode == 1 and "incompatible: scikit-learn" in bad.stdout
    refused = py(installed, "import mymodel; mymodel.load('SVC')", check=False)
    assert "EnvironmentMismatchError" in refused.stderr and ">=99.0,<99.1" in refused.stderr
    assert "pip install 'scikit-learn>=99.0,<99.1'" in refused.stderr
    py(installed, "import mymodel; mymodel.load('SVC', check_environment=False)")  # the explicit opt-out


def test_a_tampered_model_file_is_refused_and_never_unpickled(installed, tmp_path):
    marker = tmp_path / "unpickled"
    model = package_dir(installed) / "models" / "SVC" / "model.joblib"
    # A pickle that would leave a marker file if anything unpickled it.
    py(installed, f"import pickle, pathlib\n"
                  f"class Evil:\n    def __reduce__(self): return (pathlib.Path.touch, (pathlib.Path({str(marker)!r}),))\n"
                  f"open({str(model)!r}, 'wb').write(pickle.dumps(Evil()))")
    refused = py(installed, "import mymodel; mymodel.load('SVC')", check=False)
    assert refused.returncode != 0 and "IntegrityError" in refused.stderr
    assert "SVC/model.joblib has sha256" in refused.stderr and "the build recorded" in refused.stderr
    assert not marker.exists()
    cli = run([installed, "-m", "mymodel", "predict", "--model", "SVC", "--input-format", "jsonl"], input=json.dumps(ROW), env=consumer_env(),
              check=False)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr and "reinstall" in cli.stderr
    assert not marker.exists()
    py(installed, "import mymodel; mymodel.load('LogisticRegression')")  # the other files are intact


def test_unknown_model_lists_the_available_ones(installed):
    result = py(installed, "import mymodel; mymodel.load('XGBoost')", check=False)
    assert "no model named 'XGBoost' in this package; available: LogisticRegression, RandomForestClassifier, SVC" \
        in result.stderr


def test_cli_info_and_predict_round_trip(installed, tmp_path):
    info = run([installed, "-m", "mymodel", "info"], env=consumer_env()).stdout
    assert info.startswith("mymodel 1.1.2+titanic (data tag: titanic)")
    assert all(name in info for name in ("LogisticRegression", "RandomForestClassifier", "SVC", "roc_auc"))
    rows = [ROW, {**ROW, "sex": "male", "pclass": 3, "age": None, "embarked": "Q"}]
    csv_in = tmp_path / "rows.csv"
    csv_in.write_text("pclass,sex,age,sibsp,parch,fare,embarked\n1,female,29,0,0,211.3,S\n3,male,,0,0,211.3,Q\n")
    from_csv = run([installed, "-m", "mymodel", "predict", "--model", "SVC", "--input", csv_in,
                    "--output-format", "jsonl"], env=consumer_env()).stdout.splitlines()
    from_jsonl = run([installed, "-m", "mymodel", "predict", "--model", "SVC", "--input-format", "jsonl"],
                     input="\n".join(json.dumps(r) for r in rows), env=consumer_env()).stdout
    expected = json.loads(py(installed, "import json, mymodel\n"
                                        f"print(mymodel.predict('SVC', {rows!r}).to_json(orient='records'))").stdout)
    for got, want in zip([json.loads(line) for line in from_csv], expected, strict=True):
        assert got["prediction"] == want["prediction"]
        assert got["probability_1"] == pytest.approx(want["probability_1"], abs=1e-9)
    assert from_jsonl.splitlines()[0] == "prediction,probability_0,probability_1"
    assert [line.split(",")[0] for line in from_jsonl.splitlines()[1:]] == [r["prediction"] for r in expected]
    assert abs(expected[0]["probability_0"] + expected[0]["probability_1"] - 1) < 1e-9


@pytest.mark.parametrize("stdin, fragment", [
    ('{"pclass": 1}', "row 0: missing column(s) age, sibsp, parch, fare, sex, embarked"),
    (json.dumps({**ROW, "age": "old"}), "row 0, column 'age': 'old' cannot be converted to a number"),
    (json.dumps({**ROW, "cabin": "C85"}), "row 0: unexpected column(s) cabin"),
    ("not json", "input line 1 is not JSON"),
])
def test_cli_schema_errors_are_one_line(installed, stdin, fragment):
    result = run([installed, "-m", "mymodel", "predict", "--model", "SVC", "--input-format", "jsonl"],
                 input=stdin, env=consumer_env(), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("Error:") and fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
