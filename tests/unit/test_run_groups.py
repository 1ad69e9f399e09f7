"""Every integration test file runs in a named group of `make test`, not in "other"."""

from pathlib import Path

from tests.run_groups import GROUPS

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"


def test_every_integration_test_file_is_in_a_group():
    grouped = [name for files in GROUPS.values() for name in files]
    assert len(grouped) == len(set(grouped)), "a file is listed in two groups"
    on_disk = {path.name for path in INTEGRATION.glob("test_*.py")}
    assert on_disk - set(grouped) == set(), "add these files to GROUPS in tests/run_groups.py"
    assert set(grouped) - on_disk == set(), "GROUPS names files that do not exist"
