"""make release twice against a real index, then real pip and uv consumers: install, predict, roll back."""

from __future__ import annotations

import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.steps.train import train
from tests.helpers import VENV, consumer_env, make, run

pytestmark = pytest.mark.integration
CONSUMER = Path(__file__).with_name("consumer.py")


@pytest.fixture(scope="module")
def titanic_rows(tmp_path_factory):
    """Raw rows (feature columns only, as JSON) and the in-memory models' probabilities on them."""
    config = load_dataset_config()
    dataset = load_dataset(config)
    features = dataset.frame.loc[:, list(config.features)]
    rows = json.loads(features.to_json(orient="records"))
    path = tmp_path_factory.mktemp("rows") / "rows.json"
    path.write_text(json.dumps(rows))
    expected = {m.name: m.pipeline.predict_proba(features)[:, 1] for m in train(dataset, config)}
    return path, expected


def consume(python: Path, rows: Path) -> dict:
    return json.loads(run([python, CONSUMER, rows], cwd=rows.parent, env=consumer_env()).stdout)


def assert_same_predictions(report: dict, expected: dict) -> None:
    assert report["models"] == sorted(expected)
    for name, probabilities in expected.items():
        np.testing.assert_allclose(report["probabilities"][name], probabilities, rtol=0, atol=1e-12)
        assert len(report["labels"][name]) == len(probabilities)


def test_two_releases_publish_the_seed_version_then_the_next(released):
    first, second = released.outputs
    assert "released mymodel 1.1.1+titanic" in first and "released mymodel 1.1.2+titanic" in second
    for step in ("index", "version", "train", "gate", "build", "upload", "verify"):
        assert f"==> {step}" in first and f"    {step} done in " in first
    assert f"pip install --index-url {released.simple_url} mymodel==1.1.2+titanic" in second
    packages = sorted(p.name for p in Path(released.env["INDEX_DIR"]).glob("mymodel-*"))
    assert packages == ["mymodel-1.1.1+titanic-py3-none-any.whl", "mymodel-1.1.1+titanic.tar.gz",
                        "mymodel-1.1.2+titanic-py3-none-any.whl", "mymodel-1.1.2+titanic.tar.gz"]
    assert '__version__ = "1.1.2+titanic"' in (released.repo / "src/mymodel/version.py").read_text()
    lock = (released.repo / "releases/mymodel-1.1.2+titanic.txt").read_text()
    assert lock.count("--hash=sha256:") == 2 and "mymodel==1.1.2+titanic" in lock
    assert not list((released.repo / "dist").glob(".partial-*"))


def test_a_release_of_unchanged_models_records_the_bump_that_asked_for_it(released):
    """The second release changed nothing (BUMP=patch): its reason says so, not "first release"."""
    assert ("next version: no change against 1.1.1+titanic; BUMP=patch requested (logic) -> 1.1.2+titanic"
            in released.outputs[1])
    listed = make(released.repo, "versions", released.env).stdout
    why = {line.split()[0]: line for line in listed.splitlines() if line.startswith("1.1.")}
    assert re.search(r"  logic  no change; BUMP=patch requested$", why["1.1.2+titanic"]), listed
    assert re.search(r"  logic  first release of this clone$", why["1.1.1+titanic"]), listed
    rows = json.loads(make(released.repo, "versions", released.env, "FORMAT=json").stdout)
    assert [row["bump"]["reasons"] for row in rows] == [["no change; BUMP=patch requested"],
                                                        ["first release of this clone"]]


def test_pip_installs_predicts_and_rolls_back(released, titanic_rows, pip_venv, tmp_path):
    rows, expected = titanic_rows
    python = pip_venv(tmp_path / "venv")
    pip = [python, "-m", "pip", "install", "--quiet", "--index-url", released.simple_url]
    run([*pip, "mymodel==1.1.2+titanic"], env=consumer_env())
    report = consume(python, rows)
    assert report["version"] == report["distribution_version"] == "1.1.2+titanic"
    assert str(tmp_path / "venv") in report["loaded_from"]
    assert_same_predictions(report, expected)

    run([*pip, "mymodel==1.1.1+titanic"], env=consumer_env())  # roll back
    report = consume(python, rows)
    assert report["version"] == report["distribution_version"] == "1.1.1+titanic"
    assert_same_predictions(report, expected)


def test_pip_builds_the_sdist_with_the_projects_backend_and_predicts(released, titanic_rows, pip_venv, tmp_path):
    """The sdist carries its build backend (build_backend/, pyproject's backend-path): pip builds
    it in an isolated environment with setuptools from the index."""
    rows, expected = titanic_rows
    python = pip_venv(tmp_path / "venv")
    run([python, "-m", "pip", "install", "--quiet", "--index-url", released.simple_url, "--no-binary", "mymodel",
         "mymodel==1.1.2+titanic"], env=consumer_env())
    report = consume(python, rows)
    assert report["version"] == report["distribution_version"] == "1.1.2+titanic"
    assert_same_predictions(report, expected)


def test_uv_installs_predicts_and_rolls_back(released, titanic_rows, tmp_path):
    rows, expected = titanic_rows
    uv = VENV / "bin" / "uv"
    env = consumer_env(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink")
    run([uv, "venv", "--quiet", "--python", sys.executable, tmp_path / "venv"], env=env)
    python = tmp_path / "venv/bin/python"
    for version in ("1.1.1+titanic", "1.1.2+titanic", "1.1.1+titanic"):
        run([uv, "pip", "install", "--quiet", "--python", python, "--index-url", released.simple_url,
             f"mymodel=={version}"], env=env)
        report = consume(python, rows)
        assert report["version"] == report["distribution_version"] == version
        assert_same_predictions(report, expected)


# Each model's evaluation numbers and figures (pipeline/steps/figures.py), under models/.
FIGURE_FILES = [f"{model}/{name}" for model in ("LogisticRegression", "RandomForestClassifier", "SVC")
                for name in ("evaluation.json", *(f"figures/{kind}.svg" for kind in (
                    "calibration", "confusion_matrix", "permutation_importance", "precision_recall", "roc")))]


def test_built_files_have_exactly_the_expected_contents(released):
    dist = released.repo / "dist"
    with zipfile.ZipFile(dist / "mymodel-1.1.2+titanic-py3-none-any.whl") as wheel:
        assert sorted(wheel.namelist()) == sorted([
            *(f"mymodel/models/{name}" for name in FIGURE_FILES), "mymodel/models/MODEL_CARD.md",
            "mymodel-1.1.2+titanic.dist-info/METADATA",
            "mymodel-1.1.2+titanic.dist-info/RECORD",
            "mymodel-1.1.2+titanic.dist-info/WHEEL",
            "mymodel-1.1.2+titanic.dist-info/entry_points.txt",
            "mymodel-1.1.2+titanic.dist-info/top_level.txt",
            "mymodel/__init__.py",
            "mymodel/__main__.py",
            "mymodel/contract.py",
            "mymodel/environment.py",
            "mymodel/errors.py",
            "mymodel/models/LogisticRegression/metadata.json",
            "mymodel/models/LogisticRegression/model.joblib",
            "mymodel/models/RandomForestClassifier/metadata.json",
            "mymodel/models/RandomForestClassifier/model.joblib",
            "mymodel/models/SVC/metadata.json",
            "mymodel/models/SVC/model.joblib",
            "mymodel/models/manifest.json",
            "mymodel/models/metrics.json",
            "mymodel/published.py",
            "mymodel/py.typed",
            "mymodel/schema.py",
            "mymodel/store.py",
            "mymodel/version.py",
        ])
        assert wheel.read("mymodel/version.py").decode().endswith('__version__ = "1.1.2+titanic"\n')
    with tarfile.open(dist / "mymodel-1.1.2+titanic.tar.gz") as sdist:
        root = "mymodel-1.1.2+titanic/"
        assert sorted(m.name.removeprefix(root) for m in sdist.getmembers() if m.isfile()) == sorted([
            *(f"src/mymodel/models/{name}" for name in FIGURE_FILES), "src/mymodel/models/MODEL_CARD.md",
            "MANIFEST.in",
            "MODEL_CARD.md",
            "PKG-INFO",
            "build_backend/streaming_wheel.py",
            "pyproject.toml",
            "requirements-runtime.txt",
            "setup.cfg",
            "src/mymodel.egg-info/PKG-INFO",
            "src/mymodel.egg-info/SOURCES.txt",
            "src/mymodel.egg-info/dependency_links.txt",
            "src/mymodel.egg-info/entry_points.txt",
            "src/mymodel.egg-info/requires.txt",
            "src/mymodel.egg-info/top_level.txt",
            "src/mymodel/__init__.py",
            "src/mymodel/__main__.py",
            "src/mymodel/contract.py",
            "src/mymodel/environment.py",
            "src/mymodel/errors.py",
            "src/mymodel/models/LogisticRegression/metadata.json",
            "src/mymodel/models/LogisticRegression/model.joblib",
            "src/mymodel/models/RandomForestClassifier/metadata.json",
            "src/mymodel/models/RandomForestClassifier/model.joblib",
            "src/mymodel/models/SVC/metadata.json",
            "src/mymodel/models/SVC/model.joblib",
            "src/mymodel/models/manifest.json",
            "src/mymodel/models/metrics.json",
            "src/mymodel/published.py",
            "src/mymodel/py.typed",
            "src/mymodel/schema.py",
            "src/mymodel/store.py",
            "src/mymodel/version.py",
        ])


def test_wheel_metadata_requires_what_the_models_import(released, tmp_path):
    """Requires-Dist is the manifest's requirements: the distributions the packaged pickles and the
    package's own code import (scanned here again, never unpickled), each in its trained range."""
    import importlib.metadata

    from packaging.requirements import Requirement

    from pipeline.steps.requirements import runtime_requirements

    version = "1.1.2+titanic"
    with zipfile.ZipFile(released.repo / f"dist/mymodel-{version}-py3-none-any.whl") as wheel:
        metadata = wheel.read(f"mymodel-{version}.dist-info/METADATA").decode()
        manifest = json.loads(wheel.read("mymodel/models/manifest.json"))
        wheel.extractall(tmp_path, [n for n in wheel.namelist() if n.startswith("mymodel/")])
    requires = {Requirement(line.split(": ", 1)[1]).name: str(Requirement(line.split(": ", 1)[1]).specifier)
                for line in metadata.splitlines() if line.startswith("Requires-Dist: ")}
    models = {name: tmp_path / "mymodel/models" / name / "model.joblib"
              for name in ("LogisticRegression", "RandomForestClassifier", "SVC")}
    trained = json.loads((tmp_path / "mymodel/models/SVC/metadata.json").read_text())["training_environment"]
    expected = runtime_requirements(models, trained, sorted((tmp_path / "mymodel").glob("*.py")))
    assert sorted(requires) == sorted(manifest["requires"]) == sorted(expected) == \
        ["joblib", "numpy", "packaging", "pandas", "scikit-learn"]  # scipy: no pickle refers to it
    for name, spec in expected.items():
        assert requires[name] == str(Requirement(f"{name}{spec}").specifier) and manifest["requires"][name] == spec
    sk = importlib.metadata.version("scikit-learn")
    major, minor = map(int, sk.split(".")[:2])
    assert manifest["requires"]["scikit-learn"] == f">={sk},<{major}.{minor + 1}"
    assert "Requires-Python: >=3.11" in metadata
    assert "# mymodel 1.1.2+titanic" in metadata and "| RandomForestClassifier |" in metadata


def seeded_uv_venv(tmp_path: Path, simple_url: str, pip_venv) -> Path:
    """A venv with pip in it and mymodel's dependencies (via mymodel 1.1.1) from the index, installed by uv."""
    uv, env = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink")
    python = pip_venv(tmp_path / "venv")
    run([uv, "pip", "install", "--quiet", "--python", python, "--index-url", simple_url, "mymodel==1.1.1+titanic"],
        env=env)
    return python


def test_hash_locked_installs_succeed_and_refuse_a_tampered_file(released, pip_venv, tmp_path):
    lock = released.repo / "releases/mymodel-1.1.2+titanic.txt"
    python = seeded_uv_venv(tmp_path, released.simple_url, pip_venv)
    uv, env = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never")
    run([python, "-m", "pip", "install", "--quiet", "--index-url", released.simple_url, "--require-hashes",
         "--no-deps", "-r", lock], env=env)
    assert py_version(python) == "1.1.2+titanic"
    run([uv, "pip", "install", "--quiet", "--python", python, "--index-url", released.simple_url,
         "mymodel==1.1.1+titanic"], env=env)
    run([uv, "pip", "install", "--quiet", "--python", python, "--index-url", released.simple_url, "--require-hashes",
         "--no-deps", "-r", lock], env=env)
    assert py_version(python) == "1.1.2+titanic"

    # Another index serving the same file names with one byte changed: both installers refuse.
    from tests.helpers import index_env, pipeline

    tampered_env = index_env(tmp_path / "tampered")
    packages = Path(tampered_env["INDEX_DIR"])
    packages.mkdir(parents=True)
    for name in ("mymodel-1.1.2+titanic-py3-none-any.whl", "mymodel-1.1.2+titanic.tar.gz"):
        (packages / name).write_bytes((released.repo / "dist" / name).read_bytes() + b"\0")
    pipeline(released.repo, tampered_env, "index")
    try:
        tampered_url = f"http://127.0.0.1:{tampered_env['INDEX_PORT']}/simple/"
        run([uv, "pip", "install", "--quiet", "--python", python, "--index-url", released.simple_url,
             "mymodel==1.1.1+titanic"], env=env)
        by_pip = run([python, "-m", "pip", "install", "--index-url", tampered_url, "--require-hashes", "--no-deps",
                      "-r", lock], env=env, check=False)
        assert by_pip.returncode != 0 and "DO NOT MATCH" in by_pip.stderr.upper()
        by_uv = run([uv, "pip", "install", "--python", python, "--index-url", tampered_url, "--require-hashes",
                     "--no-deps", "--no-cache", "-r", lock], env=env, check=False)
        assert by_uv.returncode != 0 and "hash" in by_uv.stderr.lower()
        assert py_version(python) == "1.1.1+titanic"  # nothing tampered got installed
    finally:
        pipeline(released.repo, tampered_env, "index-stop", check=False)


def py_version(python: Path) -> str:
    return run([python, "-c", "import mymodel; print(mymodel.__version__)"], env=consumer_env(),
               cwd=python.parent).stdout.strip()


def test_private_index_release_and_consume_with_credentials(tmp_path):
    from tests.helpers import assert_clean_error, copy_repo, fill_index, index_env, make, pipeline

    repo = copy_repo(tmp_path / "repo")
    env = index_env(tmp_path)  # no INDEX_AUTH: the release follows the running index's mode
    fill_index(Path(env["INDEX_DIR"]))
    try:
        make(repo, "index", env, "INDEX_AUTH=read")
        out = make(repo, "release", env).stdout
        state = Path(env["INDEX_STATE"])
        uploader = json.loads((state / "credentials.json").read_text())
        reader = json.loads((state / "reader.json").read_text())
        assert reader["username"] == "mymodel-reader" and reader["password"] != uploader["password"]
        assert "released mymodel 1.1.1+titanic" in out and "auth=read" in out
        assert uploader["password"] not in out and reader["password"] not in out
        assert f"http://mymodel-reader:PASSWORD@127.0.0.1:{env['INDEX_PORT']}/simple/" in out
        assert f"{state}/reader.json" in out
        uv, cenv = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink")
        run([uv, "venv", "--quiet", "--python", sys.executable, tmp_path / "venv"], env=cenv)
        python = tmp_path / "venv/bin/python"
        anonymous = run([uv, "pip", "install", "--python", python, "--index-url",
                         f"http://127.0.0.1:{env['INDEX_PORT']}/simple/", "mymodel==1.1.1+titanic"],
                        env=cenv, check=False)
        assert anonymous.returncode != 0
        url = f"http://{reader['username']}:{reader['password']}@127.0.0.1:{env['INDEX_PORT']}/simple/"
        run([uv, "pip", "install", "--quiet", "--python", python, "--index-url", url, "mymodel==1.1.1+titanic"],
            env=cenv)
        assert py_version(python) == "1.1.1+titanic"
        # Or with the reader in a netrc file instead of the URL (pip reads ~/.netrc).
        netrc = tmp_path / "home" / ".netrc"
        netrc.parent.mkdir()
        netrc.write_text(f"machine 127.0.0.1 login {reader['username']} password {reader['password']}\n")
        netrc.chmod(0o600)
        plain = f"http://127.0.0.1:{env['INDEX_PORT']}/simple/"
        downloaded = run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp_path / "dl",
                          "--index-url", plain, "mymodel==1.1.1+titanic"], env={**cenv, "HOME": str(netrc.parent)})
        assert downloaded.returncode == 0 and (tmp_path / "dl/mymodel-1.1.1+titanic-py3-none-any.whl").is_file()
        # A setting that really conflicts with the running index is named, with what differs.
        conflict = make(repo, "release", env, "INDEX_AUTH=update", check=False)
        assert_clean_error(conflict, "runs with INDEX_AUTH=read, not the INDEX_AUTH=update asked for",
                           "leave INDEX_AUTH unset", "make index-stop")
        assert "INDEX_DIR" not in conflict.stderr
    finally:
        pipeline(repo, env, "index-stop", check=False)
