"""A source checkout (no installed distribution) works without a manifest, and a damaged one
it does have is one clear error line."""

import json
import os
import shutil

import pytest

from tests.helpers import PYTHON, REPO, run

METADATA = {"name": "Tiny", "training_environment": {}, "metrics": {n: 0.5 for n in ("accuracy", "roc_auc", "f1", "log_loss", "cv_accuracy_mean")}}


@pytest.fixture()
def checkout(tmp_path):
    """src/mymodel's code with one model, in a folder no dist-info describes."""
    package = tmp_path / "src" / "mymodel"
    package.mkdir(parents=True)
    for source in (REPO / "src" / "mymodel").glob("*.py"):
        shutil.copy2(source, package / source.name)
    model = package / "models" / "Tiny"
    model.mkdir(parents=True)
    (model / "metadata.json").write_text(json.dumps(METADATA))
    run([PYTHON, "-c", f"import joblib; joblib.dump({{'fitted': True}}, {str(model / 'model.joblib')!r})"])
    return package


def mymodel(checkout, *args, check=True):
    env = {**os.environ, "PYTHONPATH": str(checkout.parent)}
    return run([PYTHON, *args], cwd=checkout.parent.parent, env=env, check=check)


def test_a_source_checkout_loads_without_a_manifest(checkout):
    out = mymodel(checkout, "-c", "import mymodel; print(mymodel.metadata('Tiny')['name'], mymodel.load('Tiny'))")
    assert out.stdout.split() == ["Tiny", "{'fitted':", "True}"]
    assert mymodel(checkout, "-m", "mymodel", "info").stdout.splitlines()[-1].startswith("Tiny")


@pytest.mark.parametrize("manifest, fragment", [
    ('{"files": {"Tiny/metadata.json": "', "is not valid JSON"),
    ("{}", "has no list of file hashes"),
    ('{"files": {"Tiny/metadata.json": "0", "Gone/model.joblib": "0"}}', "Gone/model.joblib is listed in the package "
                                                                         "manifest but missing"),
], ids=["truncated", "empty", "listed-file-missing"])
def test_a_damaged_manifest_in_a_checkout_is_one_error_line(checkout, manifest, fragment):
    (checkout / "models" / "manifest.json").write_text(manifest)
    result = mymodel(checkout, "-m", "mymodel", "info", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr and "run make train" in result.stderr


@pytest.mark.parametrize("left_in_dist_info", [("INSTALLER",), ()], ids=["installer-only", "empty"])
def test_a_dist_info_folder_beside_the_package_marks_an_installed_copy(checkout, tmp_path, left_in_dist_info):
    """site-packages with RECORD, WHEEL, METADATA and the manifest deleted, and the model swapped:
    the dist-info folder alone keeps the check on, so the swapped pickle is never loaded."""
    dist_info = checkout.parent / "mymodel-1.1.2+titanic.dist-info"
    dist_info.mkdir()
    for name in left_in_dist_info:
        (dist_info / name).write_text("pip\n")
    marker = tmp_path / "unpickled"
    evil = ("import pickle, pathlib\n"
            "class Evil:\n    def __reduce__(self): return (pathlib.Path.touch, (pathlib.Path(%r),))\n"
            "open(%r, 'wb').write(pickle.dumps(Evil()))") % (str(marker), str(checkout / "models/Tiny/model.joblib"))
    run([PYTHON, "-c", evil])
    result = mymodel(checkout, "-c", "import mymodel; mymodel.load('Tiny', check_environment=False)", check=False)
    assert result.returncode != 0 and "IntegrityError" in result.stderr, result.stderr
    assert "manifest.json is missing from the installed package" in result.stderr, result.stderr
    assert "pip install --force-reinstall mymodel==1.1.2+titanic" in result.stderr, result.stderr
    assert not marker.exists()


def test_another_projects_dist_info_beside_the_package_is_no_installed_copy(checkout):
    (checkout.parent / "mymodel_prod-3.dist-info").mkdir()
    out = mymodel(checkout, "-c", "import mymodel; print(mymodel.load('Tiny'))")
    assert out.stdout.split() == ["{'fitted':", "True}"]


def installed_with_record(checkout, manifest_line) -> None:
    """The checkout as site-packages after an install: its manifest, and a dist-info whose RECORD has ``manifest_line``
    (a function of the manifest's bytes) for it."""
    import base64
    import hashlib

    manifest = json.dumps({"files": {"Tiny/metadata.json": hashlib.sha256(json.dumps(METADATA).encode()).hexdigest(),
                                     "Tiny/model.joblib": hashlib.sha256((checkout / "models/Tiny/model.joblib").read_bytes()).hexdigest()},
                           "requires": {}, "release": {}}).encode()
    (checkout / "models" / "manifest.json").write_bytes(manifest)
    digest = base64.urlsafe_b64encode(hashlib.sha256(manifest).digest()).rstrip(b"=").decode()
    dist_info = checkout.parent / "mymodel-1.1.2+titanic.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: mymodel\nVersion: 1.1.2+titanic\n\n")
    (dist_info / "RECORD").write_text(f"mymodel/__init__.py,,\n{manifest_line(digest, len(manifest))}\n"
                                      "mymodel-1.1.2+titanic.dist-info/RECORD,,\n")


def test_an_installed_copy_whose_record_has_the_manifests_hash_loads(checkout):
    installed_with_record(checkout, lambda digest, size: f"mymodel/./models/manifest.json,sha256={digest},{size}")
    assert mymodel(checkout, "-c", "import mymodel; print(mymodel.load('Tiny'))").stdout.split() == ["{'fitted':", "True}"]


@pytest.mark.parametrize("line", [
    "mymodel/models/manifest.json,sha256=not*base64,10",
    "mymodel/models/manifest.json,sha256=\"" + "A" * 200_000 + "\",10",  # a field over csv's limit
    "mymodel/models/other.json,sha256=AAAA,10",
], ids=["not-base64", "over-csv-limit", "not-listed"])
def test_a_record_without_a_usable_hash_for_the_manifest_is_one_error_line(checkout, line):
    installed_with_record(checkout, lambda digest, size: line)
    result = mymodel(checkout, "-m", "mymodel", "info", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "has no usable hash in the installed package's RECORD" in result.stderr
    assert "pip install --force-reinstall mymodel==1.1.2+titanic" in result.stderr
