"""The model contract on a package installed from the index: metadata without
unpickling, the environment check, integrity before unpickling, schema errors, the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import VENV, consumer_env, run

pytestmark = pytest.mark.integration
ROW = {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"}


@pytest.fixture()
def installed(released, tmp_path):
    """A fresh uv venv with mymodel 1.1.2+titanic from the index; returns its python.

    The tests edit mymodel's installed files, never its dependencies': those are hard links
    into uv's cache (a copy of scikit-learn, scipy and pandas is seconds per test), mymodel's
    files are copies (installed again, alone, by copying)."""
    uv, env = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never")
    run([uv, "venv", "--quiet", "--python", sys.executable, tmp_path / "venv"], env=env)
    python = tmp_path / "venv/bin/python"
    install = [uv, "pip", "install", "--quiet", "--python", python, "--index-url", released.simple_url]
    run([*install, "--link-mode", "hardlink", "mymodel==1.1.2+titanic"], env=env)
    run([*install, "--link-mode", "copy", "--no-deps", "--reinstall-package", "mymodel", "mymodel==1.1.2+titanic"],
        env=env)
    return python


def py(python: Path, code: str, check: bool = True, stdin: str | None = None):
    return run([python, "-c", code], env=consumer_env(), check=check, input=stdin, cwd=python.parent)


def package_dir(python: Path) -> Path:
    return Path(py(python, "import mymodel, os; print(os.path.dirname(mymodel.__file__))").stdout.strip())


def record_file(python: Path) -> Path:
    (dist_info,) = package_dir(python).parent.glob("mymodel-*.dist-info")
    return dist_info / "RECORD"


def rewrite_with_record(python: Path, relative: str, data: bytes) -> None:
    """Change an installed file and its RECORD line alike: a package built that way, not a tampered one."""
    (package_dir(python) / relative).write_bytes(data)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record = record_file(python)
    lines = [f"mymodel/{relative},sha256={digest},{len(data)}" if line.startswith(f"mymodel/{relative},") else line
             for line in record.read_text().splitlines()]
    record.write_text("\n".join(lines) + "\n")


def write_evil_pickle(python: Path, target: Path, marker: Path) -> bytes:
    """A pickle that would leave a marker file if anything unpickled it; returns its bytes."""
    py(python, f"import pickle, pathlib\n"
               f"class Evil:\n    def __reduce__(self): return (pathlib.Path.touch, (pathlib.Path({str(marker)!r}),))\n"
               f"open({str(target)!r}, 'wb').write(pickle.dumps(Evil()))")
    return target.read_bytes()


def cli(python: Path, *args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "mymodel", *args], input=stdin, env=consumer_env(),
                          capture_output=True, timeout=300, text=not isinstance(stdin, bytes))


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode != 0 and "Traceback" not in stderr, stderr
    assert stderr.startswith("Error: ") and len(stderr.strip().splitlines()) == 1, stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


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
    rewrite_with_record(installed, "models/manifest.json", json.dumps(document).encode())
    bad = run([installed, "-m", "mymodel", "validate"], env=consumer_env(), check=False)
    assert bad.returncode == 1 and "incompatible: scikit-learn" in bad.stdout
    refused = py(installed, "import mymodel; mymodel.load('SVC')", check=False)
    assert "EnvironmentMismatchError" in refused.stderr and ">=99.0,<99.1" in refused.stderr
    assert "pip install 'scikit-learn>=99.0,<99.1'" in refused.stderr
    py(installed, "import mymodel; mymodel.load('SVC', check_environment=False)")  # the explicit opt-out


def test_a_tampered_model_file_is_refused_and_never_unpickled(installed, tmp_path):
    marker = tmp_path / "unpickled"
    write_evil_pickle(installed, package_dir(installed) / "models" / "SVC" / "model.joblib", marker)
    refused = py(installed, "import mymodel; mymodel.load('SVC')", check=False)
    assert refused.returncode != 0 and "IntegrityError" in refused.stderr
    assert "SVC/model.joblib has sha256" in refused.stderr and "the build recorded" in refused.stderr
    assert not marker.exists()
    cli = run([installed, "-m", "mymodel", "predict", "--model", "SVC", "--input-format", "jsonl"], input=json.dumps(ROW), env=consumer_env(),
              check=False)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr and "reinstall" in cli.stderr
    assert not marker.exists()
    py(installed, "import mymodel; mymodel.load('LogisticRegression')")  # the other files are intact


REINSTALL = "pip install --force-reinstall mymodel==1.1.2+titanic"


def assert_load_refused(python: Path, marker: Path, *fragments: str) -> None:
    refused = py(python, "import mymodel; mymodel.load('SVC', check_environment=False)", check=False)
    assert refused.returncode != 0 and "IntegrityError" in refused.stderr, refused.stderr
    for fragment in fragments:
        assert fragment in refused.stderr, refused.stderr
    assert not marker.exists()


def test_without_its_manifest_an_installed_package_loads_nothing(installed, tmp_path):
    marker = tmp_path / "unpickled"
    models = package_dir(installed) / "models"
    (models / "manifest.json").unlink()
    write_evil_pickle(installed, models / "SVC" / "model.joblib", marker)
    assert_load_refused(installed, marker, "manifest.json is missing from the installed package", REINSTALL)
    assert_one_error_line(cli(installed, "validate"), "manifest.json is missing", REINSTALL)
    assert not marker.exists()


def test_a_manifest_edited_to_match_a_swapped_model_is_refused_by_record(installed, tmp_path):
    marker = tmp_path / "unpickled"
    models = package_dir(installed) / "models"
    evil = write_evil_pickle(installed, models / "SVC" / "model.joblib", marker)
    document = json.loads((models / "manifest.json").read_text())
    document["files"]["SVC/model.joblib"] = hashlib.sha256(evil).hexdigest()
    (models / "manifest.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    assert_load_refused(installed, marker, "the installer recorded", "in RECORD")
    assert_one_error_line(cli(installed, "validate"), "manifest.json has sha256", REINSTALL)
    assert not marker.exists()


@pytest.mark.parametrize("also_deleted", [("RECORD",), ("RECORD", "WHEEL"), ("RECORD", "WHEEL", "METADATA")],
                         ids=["record", "record-and-wheel", "record-wheel-and-metadata"])
def test_removing_record_too_does_not_turn_the_check_off(installed, tmp_path, also_deleted):
    marker = tmp_path / "unpickled"
    models = package_dir(installed) / "models"
    (models / "manifest.json").unlink()
    for name in also_deleted:
        (record_file(installed).parent / name).unlink()
    write_evil_pickle(installed, models / "SVC" / "model.joblib", marker)
    assert_load_refused(installed, marker, "manifest.json is missing", REINSTALL)
    assert_one_error_line(cli(installed, "validate"), "manifest.json is missing", REINSTALL)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage, command, fragment", [
    (truncate, "info", "manifest.json has sha256"),
    (lambda path: path.write_text("{}"), "info", "manifest.json has sha256"),
    (lambda path: (path.parent / "SVC" / "metadata.json").unlink(), "info", "SVC/metadata.json is listed in the package manifest but missing"),
    (lambda path: (path.parent / "SVC" / "model.joblib").unlink(), "info", "SVC/model.joblib is listed in the package manifest but missing"),
    (lambda path: (path.parent / "SVC" / "metadata.json").unlink(), "predict", "SVC/metadata.json is listed in the package manifest but missing"),
    (lambda path: (path.parent / "SVC" / "model.joblib").unlink(), "predict", "SVC/model.joblib is listed in the package manifest but missing"),
], ids=["truncated-manifest", "empty-manifest", "no-metadata-info", "no-model-info", "no-metadata-predict", "no-model-predict"])
def test_a_damaged_installation_is_one_error_line_with_the_reinstall_command(installed, damage, command, fragment):
    damage(package_dir(installed) / "models" / "manifest.json")
    args = ["predict", "--model", "SVC", "--input-format", "jsonl"] if command == "predict" else ["info"]
    assert_one_error_line(cli(installed, *args, stdin=json.dumps(ROW)), fragment, REINSTALL)


@pytest.mark.parametrize("damage, fragment", [
    (truncate, "is not valid JSON"),
    (lambda path: path.write_text("{}"), "has no list of file hashes"),
], ids=["truncated-manifest", "empty-manifest"])
def test_a_damaged_manifest_that_record_agrees_with_is_one_error_line(installed, damage, fragment):
    manifest = package_dir(installed) / "models" / "manifest.json"
    damage(manifest)
    rewrite_with_record(installed, "models/manifest.json", manifest.read_bytes())
    assert_one_error_line(cli(installed, "info"), "manifest.json", fragment, REINSTALL)


def test_a_latin_1_csv_is_refused_alike_from_a_file_and_from_stdin(installed, tmp_path):
    latin_1 = "pclass,sex,age,sibsp,parch,fare,embarked\n1,f\u00e9male,29,0,0,211.3,S\n".encode("latin-1")
    path = tmp_path / "rows.csv"
    path.write_bytes(latin_1)
    problem = "is not UTF-8 text (byte 0xe9 at offset 44); save the file as UTF-8"
    assert_one_error_line(cli(installed, "predict", "--model", "SVC", "--input", str(path)), f"{path} {problem}")
    assert_one_error_line(cli(installed, "predict", "--model", "SVC", stdin=latin_1), f"standard input {problem}")
    utf_8 = cli(installed, "predict", "--model", "SVC", stdin=latin_1.decode("latin-1").encode())
    assert utf_8.returncode == 0 and utf_8.stdout.decode().startswith("prediction,"), utf_8.stderr


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


@pytest.mark.parametrize("count", [1, 2], ids=["one-line", "two-lines"])
def test_json_lines_on_stdin_are_read_as_json_lines_without_input_format(installed, count):
    rows = [ROW, {**ROW, "pclass": 3, "sex": "male", "age": 22, "fare": 7.25}][:count]
    stdin = "".join(json.dumps(row) + "\n" for row in rows)
    detected = cli(installed, "predict", "--model", "SVC", stdin=stdin)
    assert detected.returncode == 0, detected.stderr
    named = cli(installed, "predict", "--model", "SVC", "--input-format", "jsonl", stdin=stdin)
    assert detected.stdout == named.stdout, (detected.stdout, named.stdout)
    assert detected.stdout.splitlines()[0] == "prediction,probability_0,probability_1"
    assert len(detected.stdout.splitlines()) == 1 + count
    as_csv = cli(installed, "predict", "--model", "SVC", stdin=f"{','.join(ROW)}\n{','.join(map(str, ROW.values()))}\n")
    assert as_csv.stdout.splitlines() == named.stdout.splitlines()[:2]  # a CSV is still read as CSV


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
