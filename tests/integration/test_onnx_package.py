"""The <name>-onnx distribution each release publishes beside the scikit-learn package: installed
from the test index into one fresh venv per session that has onnxruntime and numpy but no
scikit-learn, pandas, scipy or joblib, it predicts what the scikit-learn package predicts on the
held-out rows of Titanic (binary), wine (three classes) and diabetes (a regression)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import sys
from pathlib import Path

import pytest

from tests.helpers import PYTHON, VENV, assert_clean_error, consumer_env, ensure_wheelhouse, run

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


def install_onnx(python: Path, env: dict[str, str], version: str) -> None:
    """``mymodel-onnx==version`` from the release's test index (which serves the wheelhouse too)."""
    run([UV, "pip", "install", "--quiet", "--python", python, "--index-url",
         f"http://127.0.0.1:{env['INDEX_PORT']}/simple/", f"mymodel-onnx=={version}"], env=consumer_env())


def held_out(repo: Path, data_file: Path | None = None) -> list[dict]:
    """The rows the release held out (its dataset.toml, its split), as JSON carries them (NaN -> None)."""
    from pipeline.config import load_dataset_config
    from pipeline.steps.data import load_dataset
    from pipeline.steps.train import split

    config = load_dataset_config(repo / "dataset.toml")
    _, rows, _, _ = split(load_dataset(config, data_file), config)
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in rows.to_dict(orient="records")]


PREDICT = """import json, sys, {package}
rows = json.load(open(sys.argv[1]))
result = {{name: {package}.predict(name, rows) for name in {package}.list_models()}}
if 'pandas' in sys.modules:
    result = {{name: frame.to_dict(orient='records') for name, frame in result.items()}}
print(json.dumps({{'models': result, 'imported': sorted(m for m in {absent} if m in sys.modules)}}))
"""


def predictions(python: Path, package: str, rows_file: Path, pythonpath: Path | None = None) -> dict:
    env = consumer_env(**({"PYTHONPATH": str(pythonpath)} if pythonpath else {}))
    code = PREDICT.format(package=package, absent=ABSENT)
    return json.loads(run([python, "-c", code, rows_file], env=env, cwd=rows_file.parent).stdout)


def assert_same(onnx: list[dict], scikit: list[dict], task: str) -> None:
    """The same columns; labels equal (except an exact tie of the two likeliest classes), probabilities within the
    conversion's 1e-5, regression values within 1e-6 relative (docs/onnx.md), on every row."""
    assert len(onnx) == len(scikit) > 0
    assert list(onnx[0]) == list(scikit[0])
    for ours, theirs in zip(onnx, scikit, strict=True):
        if task == "regression":
            assert ours["prediction"] == pytest.approx(theirs["prediction"], rel=1e-6, abs=1e-6)
            continue
        likeliest = sorted((v for k, v in theirs.items() if k.startswith("probability_")), reverse=True)
        assert ours["prediction"] == theirs["prediction"] or likeliest[0] - likeliest[1] < 1e-6, (ours, theirs)
        for key, value in theirs.items():
            if key.startswith("probability_"):
                assert ours[key] == pytest.approx(value, abs=1e-5), key


@pytest.mark.parametrize("dataset", ["titanic", "wine", "diabetes"])
def test_the_onnx_package_predicts_what_the_scikit_learn_package_predicts(dataset, request, onnx_venv, tmp_path):
    if dataset == "titanic":
        release = request.getfixturevalue("released")
        repo, env, version, data_file, task = release.repo, release.env, release.versions[-1], None, "classification"
    else:
        release = request.getfixturevalue(f"{dataset}_release")
        repo, env, version, data_file = release.repo, release.env, release.version, release.csv
        task = "regression" if dataset == "diabetes" else "classification"
    install_onnx(onnx_venv, env, version)
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(held_out(repo, data_file)))

    onnx = predictions(onnx_venv, "mymodel_onnx", rows_file)
    assert onnx["imported"] == []  # no scikit-learn, scipy, joblib or pandas: not even installed
    # The scikit-learn package as released: the clone's package folder holds the published models' bytes.
    scikit = predictions(PYTHON, "mymodel", rows_file, pythonpath=repo / "src")
    assert sorted(onnx["models"]) == sorted(scikit["models"]) and len(onnx["models"]) == 3
    for name, rows in scikit["models"].items():
        assert_same(onnx["models"][name], rows, task)

    version_line = run([onnx_venv, "-m", "mymodel_onnx", "info"], env=consumer_env()).stdout.splitlines()[0]
    assert version_line.startswith(f"mymodel-onnx {version}")
    assert "NO" not in run([onnx_venv, "-m", "mymodel_onnx", "validate"], env=consumer_env()).stdout


def test_the_onnx_command_line_predicts_csv_without_pandas_and_refuses_bad_rows(diabetes_release, onnx_venv, tmp_path):
    install_onnx(onnx_venv, diabetes_release.env, diabetes_release.version)
    frame = diabetes_release.frame.drop(columns="target")
    csv = tmp_path / "rows.csv"
    frame.iloc[:3].to_csv(csv, index=False)
    out = run([onnx_venv, "-m", "mymodel_onnx", "predict", "--model", "Ridge", "--input", csv], env=consumer_env())
    lines = out.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 4 and all(float(v) > 0 for v in lines[1:])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**frame.iloc[0].to_dict(), "age": "old"}) + "\n")
    refused = run([onnx_venv, "-m", "mymodel_onnx", "predict", "--model", "Ridge", "--input", bad],
                  env=consumer_env(), check=False)
    assert_clean_error(refused, "row 0, column 'age': 'old' cannot be converted to a number")


def test_an_installed_onnx_file_that_was_changed_is_refused(diabetes_release, onnx_venv):
    install_onnx(onnx_venv, diabetes_release.env, diabetes_release.version)
    site = run([onnx_venv, "-c", "import mymodel_onnx, os; print(os.path.dirname(mymodel_onnx.__file__))"],
               env=consumer_env()).stdout.strip()
    model = Path(site) / "models" / "Ridge" / "model.onnx"
    original = model.read_bytes()
    try:
        model.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        refused = run([onnx_venv, "-m", "mymodel_onnx", "predict", "--model", "Ridge", "--input", "-"],
                      env=consumer_env(), input=json.dumps(diabetes_release.frame.drop(columns="target").iloc[0].to_dict()),
                      check=False)
        assert_clean_error(refused, "Ridge/model.onnx has sha256", "the installed file was changed, so it is not loaded",
                           "pip install --force-reinstall mymodel-onnx==1.1.1+diabetes")
    finally:
        model.write_bytes(original)


def _record_line(record: Path, member: str, content: bytes) -> None:
    """RECORD's line for ``member`` rewritten for ``content``, as an installer writes it."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    lines = [f"{member},sha256={digest},{len(content)}" if line.startswith(f"{member},") else line
             for line in record.read_text().splitlines()]
    record.write_text("\n".join(lines) + "\n")


def test_an_onnx_model_with_external_data_is_refused_at_load(released, onnx_venv, tmp_path):
    """A consistent forgery (model.onnx, manifest and RECORD agree) whose weights onnxruntime would read from
    a file in the consumer's working directory: refused before onnxruntime sees it."""
    import onnx

    version = released.versions[-1]
    install_onnx(onnx_venv, released.env, version)
    site = Path(run([onnx_venv, "-c", "import mymodel_onnx, os; print(os.path.dirname(mymodel_onnx.__file__))"],
                    env=consumer_env()).stdout.strip())
    model, manifest = site / "models" / "LogisticRegression" / "model.onnx", site / "models" / "manifest.json"
    record = next(site.parent.glob(f"mymodel_onnx-{version}.dist-info")) / "RECORD"
    originals = {path: path.read_bytes() for path in (model, manifest, record)}
    from onnx import numpy_helper

    forged = onnx.load_model_from_string(originals[model])
    first = forged.graph.initializer[0]  # its bytes move to weights.bin, which the model names
    outside = numpy_helper.from_array(numpy_helper.to_array(first), first.name)
    consumer = tmp_path / "consumer"  # the service's working directory: where onnxruntime looks for weights.bin
    consumer.mkdir()
    (consumer / "weights.bin").write_bytes(outside.raw_data)
    onnx.external_data_helper.set_external_data(outside, location="weights.bin", length=len(outside.raw_data))
    outside.ClearField("raw_data")
    outside.data_location = onnx.TensorProto.EXTERNAL
    first.CopyFrom(outside)
    forged_bytes = forged.SerializeToString()
    try:
        model.write_bytes(forged_bytes)
        listed = json.loads(originals[manifest])
        listed["files"]["LogisticRegression/model.onnx"] = hashlib.sha256(forged_bytes).hexdigest()
        manifest.write_text(json.dumps(listed, indent=2, sort_keys=True) + "\n")
        _record_line(record, "mymodel_onnx/models/LogisticRegression/model.onnx", forged_bytes)
        _record_line(record, "mymodel_onnx/models/manifest.json", manifest.read_bytes())
        # onnxruntime alone loads it (unoptimised: the optimiser may stop at it), reading weights.bin from the
        # working directory: from another folder the same bytes fail to load
        load = ("import onnxruntime as o, sys; options = o.SessionOptions(); options.graph_optimization_level = "
                "o.GraphOptimizationLevel.ORT_DISABLE_ALL; o.InferenceSession(open(sys.argv[1], 'rb').read(), options)")
        run([onnx_venv, "-c", load, model], env=consumer_env(), cwd=consumer)
        assert run([onnx_venv, "-c", load, model], env=consumer_env(), cwd=tmp_path, check=False).returncode != 0
        row = json.dumps({"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"})
        refused = run([onnx_venv, "-m", "mymodel_onnx", "predict", "--model", "LogisticRegression", "--input", "-"],
                      env=consumer_env(), cwd=consumer, input=row, check=False)
        assert_clean_error(refused, "LogisticRegression/model.onnx keeps the tensor", "outside the file (ONNX external data",
                           "it is not loaded")
        assert refused.stdout == ""
    finally:
        for path, content in originals.items():
            path.write_bytes(content)


ROW = {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"}


def installed_twin(released, onnx_venv) -> Path:
    """``mymodel-onnx`` of the last release installed into the session's venv; its package folder."""
    install_onnx(onnx_venv, released.env, released.versions[-1])
    return Path(run([onnx_venv, "-c", "import mymodel_onnx, os; print(os.path.dirname(mymodel_onnx.__file__))"],
                    env=consumer_env()).stdout.strip())


def test_a_cold_predict_imports_no_importlib_metadata_and_its_session_does_not_spin(released, onnx_venv, tmp_path):
    """What the cold import + predict leaves out (its cost): importlib.metadata and the email parser it
    imports (the versions and RECORD are read from the dist-info files), onnxruntime's spinning threads."""
    installed_twin(released, onnx_venv)
    code = ("import sys, mymodel_onnx\n"
            f"name = mymodel_onnx.list_models()[0]; answer = mymodel_onnx.predict(name, {ROW!r})\n"
            "print(sorted(m for m in sys.modules if m.startswith(('importlib.metadata', 'email'))))\n"
            "options = mymodel_onnx.load(name).get_session_options()\n"
            "print(options.get_session_config_entry('session.intra_op.allow_spinning'), answer[0]['prediction'])")
    lines = run([onnx_venv, "-c", code], env=consumer_env(), cwd=tmp_path).stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[1].split()[0] == "0" and lines[1].split()[1] in ("0", "1")


def test_installed_numpy_and_onnxruntime_out_of_the_recorded_range_are_refused(released, onnx_venv, tmp_path):
    """The manifest's ranges (RECORD agreeing) against the versions the dist-info folders give."""
    package = installed_twin(released, onnx_venv)
    manifest = package / "models" / "manifest.json"
    record = next(package.parent.glob(f"mymodel_onnx-{released.versions[-1]}.dist-info")) / "RECORD"
    originals = {path: path.read_bytes() for path in (manifest, record)}
    installed = json.loads(run([onnx_venv, "-c", "import numpy, onnxruntime, json; "
                                "print(json.dumps([numpy.__version__, onnxruntime.__version__]))"],
                               env=consumer_env()).stdout)
    try:
        document = json.loads(originals[manifest])
        document["requires"] = {"numpy": ">=1.26,<1.27", "onnxruntime": ">=1.31,<1.32"}
        manifest.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        _record_line(record, "mymodel_onnx/models/manifest.json", manifest.read_bytes())
        refused = run([onnx_venv, "-m", "mymodel_onnx", "predict", "--model", "LogisticRegression", "--input", "-"],
                      env=consumer_env(), cwd=tmp_path, input=json.dumps(ROW), check=False)
        assert_clean_error(refused, f"need numpy>=1.26,<1.27, but {installed[0]} is installed",
                           f"need onnxruntime>=1.31,<1.32, but {installed[1]} is installed")
        code = ("import mymodel_onnx\ntry:\n    mymodel_onnx.load('LogisticRegression')\n"
                "except mymodel_onnx.EnvironmentMismatchError as exc:\n    print('refused', exc)")
        assert run([onnx_venv, "-c", code], env=consumer_env(), cwd=tmp_path).stdout.startswith("refused these models")
    finally:
        for path, content in originals.items():
            path.write_bytes(content)
