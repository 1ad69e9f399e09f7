"""This clone's records of its releases (releases/ and git history): what the gate trusts to unpickle."""

from __future__ import annotations

from pathlib import Path

from pipeline.steps.publish import format_lock
from pipeline.steps.release_records import recorded
from tests.helpers import commit, run

WHEEL, SDIST = "a" * 64, "b" * 64
VERSION = "1.1.1+titanic"


def lock(releases: Path, version: str = VERSION) -> Path:
    releases.mkdir(parents=True, exist_ok=True)
    path = releases / f"mymodel-{version}.txt"
    path.write_text(format_lock(version, {f"mymodel-{version}-py3-none-any.whl": WHEEL,
                                          f"mymodel-{version}.tar.gz": SDIST}, "http://127.0.0.1:1/simple/"))
    return path


def test_the_lock_in_releases_is_the_record(tmp_path):
    lock(tmp_path / "releases")
    record = recorded(VERSION, tmp_path / "releases")
    assert record.sha256 == {WHEEL, SDIST} and record.where == f"releases/mymodel-{VERSION}.txt"


def test_a_version_this_clone_never_released_has_no_record(tmp_path):
    lock(tmp_path / "releases")
    assert recorded("1.3.0+titanic", tmp_path / "releases") is None  # and no git repository here
    (tmp_path / "releases" / "mymodel-1.3.0+titanic.txt").write_text("mymodel==1.3.0+titanic\n")
    assert recorded("1.3.0+titanic", tmp_path / "releases") is None  # a lock without hashes records nothing


def test_a_lock_deleted_from_the_checkout_is_found_in_git_history(tmp_path):
    repo = tmp_path / "clone"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], cwd=repo)
    path = lock(repo / "releases")
    commit(repo, "release 1.1.1")
    path.unlink()
    commit(repo, "releases cleaned up")
    record = recorded(VERSION, repo / "releases")
    assert record.sha256 == {WHEEL, SDIST} and record.where.startswith(f"releases/mymodel-{VERSION}.txt in commit ")
    assert recorded("1.3.0+titanic", repo / "releases") is None
