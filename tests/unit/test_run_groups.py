"""Every integration test file runs in exactly one group of `make test`: its GROUPS entry, or "other"."""

from pathlib import Path

from tests.run_groups import GROUPS, OTHER, integration_groups

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"


def test_groups_name_existing_files_once_each():
    grouped = [name for files in GROUPS.values() for name in files]
    assert len(grouped) == len(set(grouped)), "a file is listed in two groups"
    on_disk = {path.name for path in INTEGRATION.glob("test_*.py")}
    assert set(grouped) - on_disk == set(), "GROUPS names files that do not exist"


def test_every_integration_file_runs_in_one_group_and_an_unlisted_one_in_other(tmp_path):
    groups = integration_groups([str(INTEGRATION)])
    files = [Path(name).name for selected in groups.values() for name in selected]
    assert sorted(files) == sorted(path.name for path in INTEGRATION.glob("test_*.py"))
    (tmp_path / "test_new_thing.py").write_text("import pytest\npytestmark = pytest.mark.integration\n")
    (tmp_path / "test_index.py").write_text("import pytest\npytestmark = pytest.mark.integration\n")
    (tmp_path / "test_fast.py").write_text("def test_unit():\n    pass\n")  # no integration test: no group runs it
    assert integration_groups([str(tmp_path), f"{tmp_path}/test_release.py::test_one"]) == {
        "index": [str(tmp_path / "test_index.py")], "releases": [f"{tmp_path}/test_release.py::test_one"],
        OTHER: [str(tmp_path / "test_new_thing.py")]}


def test_no_integration_file_is_left_to_other():
    """A new integration file gets a named group: "other" is started last, outside the balance by last run's times."""
    groups = integration_groups([str(INTEGRATION)])
    assert OTHER not in groups, ("put " + ", ".join(Path(name).name for name in groups.get(OTHER, []))
                                 + " into a group of GROUPS in tests/run_groups.py")
