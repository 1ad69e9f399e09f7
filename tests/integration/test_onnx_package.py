"""The <name>-onnx distribution: the release's models as ONNX, installed into a fresh venv that has
onnxruntime and numpy but no scikit-learn, pandas, scipy or joblib, predicting what the
scikit-learn package predicts. ONNX files come from real conversions (skl2onnx)."""

from __future__ import annotations

import json
import math
import re
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import VENV, assert_clean_error, consumer_env, ensure_wheelhouse, run
from tests.onnx_models import convert_models

pytestmark = pytest.mark.integration

UV = VENV / "bin" / "uv"
ABSENT = ("sklearn", "scipy", "joblib", "pandas")


@pytest.fixture(scope="session")
def onnx_venv(tmp_path_factory) -> Path:
    """One fresh venv per session with the -onnx runtime only (onnxruntime, numpy, from the wheelhouse); its python."""
    venv = tmp_path_factory.mktemp("onnx-venv") / "venv"
    env = consumer_env(UV_PYTHON_DOWNLOADS="never")
    run([UV, "venv", "--quiet", "--python", sys.executable, venv], env=env)
    python = venv / "bin" / "python"
    run([UV, "pip", "install", "--quiet", "--python", python, "--no-index", "--find-links", ensure_wheelhouse(),
         "onnxruntime", "numpy"], env=env)
    for module in ABSENT:
        assert run([python, "-c", f"import {module}"], env=env, check=False).returncode != 0, module
    return python


def install_wheel(python: Path, wheel: Path) -> None:
    run([UV, "pip", "install", "--quiet", "--python", python, "--no-index", "--find-links", ensure_wheelhouse(),
         "--reinstall-package", wheel.name.split("-")[0].replace("_", "-"), wheel], env=consumer_env())


def in_venv(python: Path, code: str, *, check: bool = True):
    return run([python, "-c", code], env=consumer_env(), cwd=python.parent, check=check)


def onnx_predictions(python: Path, package: str, model: str, rows: list[dict]) -> list[dict]:
    """``<package>.predict`` in the venv, as records; also asserts it needed no pandas."""
    path = python.parent / "rows.json"
    path.write_text(json.dumps(rows))
    out = in_venv(python, f"import json, sys, {package}\n"
                          f"result = {package}.predict({model!r}, json.load(open({str(path)!r})))\n"
                          "assert 'pandas' not in sys.modules and 'sklearn' not in sys.modules\n"
                          "print(json.dumps(result))").stdout
    return json.loads(out)


def plain(rows: list[dict]) -> list[dict]:
    """Rows as JSON carries them: NaN becomes None (a missing value either way)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


def assert_same(onnx: list[dict], scikit: list[dict], task: str) -> None:
    """Labels equal (except an exact tie between two classes), probabilities and values equal to float32's precision."""
    assert len(onnx) == len(scikit) and onnx
    assert list(onnx[0]) == list(scikit[0])
    for ours, theirs in zip(onnx, scikit):
        if task == "regression":
            assert ours["prediction"] == pytest.approx(theirs["prediction"], rel=1e-4, abs=1e-3)
            continue
        probabilities = sorted((v for k, v in theirs.items() if k.startswith("probability_")), reverse=True)
        tie = len(probabilities) > 1 and probabilities[0] - probabilities[1] < 1e-5
        assert tie or ours["prediction"] == theirs["prediction"], (ours, theirs)
        for key, value in theirs.items():
            if key.startswith("probability_"):
                assert ours[key] == pytest.approx(value, abs=1e-4), key


@pytest.fixture(scope="module")
def diabetes_models(tmp_path_factory):
    """The default regression models trained on the diabetes data, converted: skl2onnx refuses HistGradientBoosting
    here, and the forest's float32 graph answers some rows otherwise (so it is not shipped)."""
    from pipeline.data import load_dataset
    from pipeline.train import save, split, train
    from tests.unit.test_tasks import config_for, diabetes_frame, write_csv

    tmp = tmp_path_factory.mktemp("onnx-diabetes")
    frame = diabetes_frame()
    config = config_for(tmp, write_csv(tmp, "diabetes", frame), frame, 'task = "regression"')
    dataset = load_dataset(config)
    trained = train(dataset, config)
    save(trained, tmp / "models")
    _, held_out, _, _ = split(dataset, config)
    records = convert_models(tmp / "models", held_out)
    return tmp, {m.name: m.pipeline for m in trained}, held_out, records


def test_a_model_that_cannot_convert_ships_without_onnx_and_says_so(diabetes_models, onnx_venv):
    from pipeline.build import build

    tmp, pipelines, held_out, records = diabetes_models
    assert records["HistGradientBoostingRegressor"]["status"] == "not converted"
    assert records["RandomForestRegressor"]["status"] == "disagrees" and records["Ridge"]["status"] == "converted"
    built = build("1.1.1+diabetes", tmp / "dist", tmp / "models")
    assert built.twin is not None and built.twin.name == "mymodel_onnx-1.1.1+diabetes-py3-none-any.whl"
    with zipfile.ZipFile(built.twin) as wheel:
        names = wheel.namelist()
        metadata = wheel.read("mymodel_onnx-1.1.1+diabetes.dist-info/METADATA").decode()
    assert not [n for n in names if n.endswith(".joblib")]
    assert "mymodel_onnx/models/Ridge/model.onnx" in names
    assert not [n for n in names if "HistGradientBoostingRegressor" in n or "RandomForest" in n]
    requires = sorted(line for line in metadata.splitlines() if line.startswith("Requires-Dist:"))
    assert [re.match(r"Requires-Dist: ([a-z]+)", r).group(1) for r in requires] == ["numpy", "onnxruntime"]
    assert "| HistGradientBoostingRegressor | no: " in metadata  # the model card says so

    install_wheel(onnx_venv, built.twin)
    listed = json.loads(in_venv(onnx_venv, "import json, mymodel_onnx as m\n"
                                           "print(json.dumps([m.list_models(), m.metadata()['not_converted']]))").stdout)
    assert listed[0] == ["Ridge"]
    assert listed[1]["HistGradientBoostingRegressor"].startswith("ValueError: ")
    assert listed[1]["RandomForestRegressor"].endswith(f"of {len(held_out)} rows differ")
    refused = in_venv(onnx_venv, "import mymodel_onnx as m; m.predict('HistGradientBoostingRegressor', {})", check=False)
    assert "UnknownModelError" in refused.stderr
    assert "has no ONNX form in mymodel-onnx" in refused.stderr and "use it from the mymodel package" in refused.stderr

    rows = plain(held_out.to_dict(orient="records"))
    scikit = [{"prediction": float(v)} for v in pipelines["Ridge"].predict(held_out)]
    assert_same(onnx_predictions(onnx_venv, "mymodel_onnx", "Ridge", rows), scikit, "regression")


def test_the_onnx_command_line_predicts_without_pandas_and_refuses_bad_rows(diabetes_models, onnx_venv, tmp_path):
    from pipeline.build import build

    tmp, pipelines, held_out, _ = diabetes_models
    built = build("1.1.1+diabetes", tmp / "dist", tmp / "models")
    install_wheel(onnx_venv, built.twin)
    csv = tmp_path / "rows.csv"
    held_out.iloc[:3].to_csv(csv, index=False)
    out = run([onnx_venv, "-m", "mymodel_onnx", "predict", "--model", "Ridge", "--input", csv], env=consumer_env()).stdout
    lines = out.splitlines()
    assert lines[0] == "prediction" and len(lines) == 4
    assert [float(v) for v in lines[1:]] == pytest.approx(list(pipelines["Ridge"].predict(held_out.iloc[:3])), rel=1e-4)
    valid = run([onnx_venv, "-m", "mymodel_onnx", "validate"], env=consumer_env())
    assert "onnxruntime" in valid.stdout and "NO" not in valid.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**plain(held_out.iloc[:1].to_dict(orient="records"))[0], "age": "old"}) + "\n")
    assert_clean_error(run([onnx_venv, "-m", "mymodel_onnx", "predict", "--model", "Ridge", "--input", bad],
                           env=consumer_env(), check=False), "row 0, column 'age': 'old' cannot be converted to a number")
