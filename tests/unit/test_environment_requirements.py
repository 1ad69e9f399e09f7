"""load() and validate check every requirement the build recorded, not only scikit-learn's."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import zipfile

import pytest

from mymodel import environment
from tests.unit.test_store import METADATA, checkout, mymodel  # noqa: F401  (checkout is a fixture)

NUMPY = importlib.metadata.version("numpy")
REQUIRES = {"joblib": ">=1.0", "numpy": ">=99.0,<99.1", "made-up-dist-for-a-test": ">=4.7,<4.8"}


def with_requires(checkout, requires: dict) -> None:  # noqa: F811
    trained = {**METADATA, "training_environment": {"numpy": "99.0.1", "made-up-dist-for-a-test": "4.7.0"}}
    (checkout / "models" / "Tiny" / "metadata.json").write_text(json.dumps(trained))
    (checkout / "models" / "manifest.json").write_text(json.dumps({"files": {}, "requires": requires, "release": {}}))


def test_validate_names_each_missing_or_out_of_range_requirement_and_its_fix(checkout):  # noqa: F811
    with_requires(checkout, REQUIRES)
    result = mymodel(checkout, "-m", "mymodel", "validate", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    rows = {line.split()[0]: line.split()[-1] for line in result.stdout.splitlines()[1:4]}
    assert rows == {"joblib": "yes", "numpy": "NO", "made-up-dist-for-a-test": "NO"}
    assert "incompatible: numpy, made-up-dist-for-a-test;" in result.stdout
    assert (f"- these models were trained with numpy 99.0.1 and need numpy>=99.0,<99.1, but {NUMPY} is installed: "
            "pip install 'numpy>=99.0,<99.1', or pin a mymodel version trained with your numpy") in result.stdout
    assert ("- these models were trained with made-up-dist-for-a-test 4.7.0 and need made-up-dist-for-a-test>=4.7,<4.8, "
            "but it is not installed: pip install 'made-up-dist-for-a-test>=4.7,<4.8'") in result.stdout


def test_load_refuses_while_any_requirement_is_unmet_and_loads_when_all_are(checkout):  # noqa: F811
    with_requires(checkout, {"joblib": ">=1.0", "made-up-dist-for-a-test": ">=4.7,<4.8"})
    code = ("import mymodel\ntry:\n    mymodel.load('Tiny')\nexcept mymodel.EnvironmentMismatchError as exc:\n"
            "    print(exc)\nprint(mymodel.load('Tiny', check_environment=False))")
    out = mymodel(checkout, "-c", code).stdout.splitlines()
    assert out[0] == ("these models were trained with made-up-dist-for-a-test 4.7.0 and need "
                      "made-up-dist-for-a-test>=4.7,<4.8, but it is not installed: pip install "
                      "'made-up-dist-for-a-test>=4.7,<4.8', or pin a mymodel version trained with your "
                      "made-up-dist-for-a-test (or pass check_environment=False to load anyway)")
    assert out[1] == "{'fitted': True}"
    with_requires(checkout, {"joblib": ">=1.0", "numpy": f"=={NUMPY}"})
    assert mymodel(checkout, "-c", "import mymodel; print(mymodel.load('Tiny'))").stdout.strip() == "{'fitted': True}"


def test_a_requirement_that_is_no_version_range_is_one_error_line(checkout):  # noqa: F811
    with_requires(checkout, {"numpy": "not a range"})
    result = mymodel(checkout, "-m", "mymodel", "validate", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "requires numpy 'not a range', which is not a version range" in result.stderr


def test_checking_the_requirements_imports_no_importlib_metadata(checkout):  # noqa: F811
    """The versions come from the dist-info folders' METADATA headers: importing importlib.metadata was a tenth
    of the -onnx package's cold import + predict."""
    with_requires(checkout, {"numpy": f"=={NUMPY}"})
    code = "import sys, mymodel; mymodel.load('Tiny'); print(sorted(m for m in sys.modules if m.startswith(('importlib.metadata', 'email'))))"
    assert mymodel(checkout, "-c", code).stdout.strip() == "[]"


def test_every_installed_version_is_the_one_importlib_metadata_reads():
    names = {distribution.metadata["Name"] for distribution in importlib.metadata.distributions()}
    assert len(names) > 50
    assert {name: environment.installed_version(name) for name in names} == \
        {name: importlib.metadata.version(name) for name in names}


def dist_info(folder, name: str, version: str | None, suffix: str = ".dist-info"):
    info = folder / f"{name}-{version or '0'}{suffix}"
    info.mkdir(parents=True)
    (info / ("PKG-INFO" if suffix == ".egg-info" else "METADATA")).write_text(
        f"Metadata-Version: 2.1\nName: {name}\n" + (f"Version: {version}\n" if version else "") + "\nVersion: 0\n")


@pytest.mark.parametrize("layout, expected", [
    ([("Made_Up", "4.7.1")], {"4.7.1"}),  # the name compared as importlib.metadata compares it
    ([("made_up", "4.7.1"), ("made_up", "4.8.0")], {"4.7.1", "4.8.0"}),  # two: importlib.metadata picks
    ([("made_up", "4.7.1", ".egg-info")], {"4.7.1"}),  # not a dist-info: importlib.metadata reads it
    ([("made_up", None)], {None}),  # no Version header
    ([], {"9.9.9"}),  # none in the first folder: the later one's
], ids=["one-dist-info", "two", "egg-info", "no-version", "only-later"])
def test_each_layout_gets_importlib_metadatas_answer(tmp_path, monkeypatch, layout, expected):
    for entry in layout:
        dist_info(tmp_path / "first", *entry)
    dist_info(tmp_path / "later", "made_up", "9.9.9")  # shadowed by the first folder's, as on sys.path
    monkeypatch.setattr(sys, "path", [str(tmp_path / "gone"), str(tmp_path / "first"), str(tmp_path / "later"), *sys.path])
    environment.installed_version.cache_clear()
    try:
        assert environment.installed_version("made-up") == importlib.metadata.version("made-up")
        assert environment.installed_version("made-up") in expected
    finally:
        environment.installed_version.cache_clear()


def test_a_zip_on_sys_path_before_the_folder_gets_importlib_metadatas_answer(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "first.zip", "w") as archive:
        archive.writestr("made_up-5.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: made_up\nVersion: 5.0\n")
    dist_info(tmp_path / "later", "made_up", "9.9.9")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "first.zip"), str(tmp_path / "later"), *sys.path])
    environment.installed_version.cache_clear()
    try:
        assert environment.installed_version("made-up") == importlib.metadata.version("made-up") == "5.0"
    finally:
        environment.installed_version.cache_clear()
