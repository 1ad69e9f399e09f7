"""This clone's records of its releases (releases/ and HEAD's git history): what the gate trusts to unpickle."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.steps.publish import format_lock
from pipeline.steps.release_records import recorded
from tests.helpers import GIT_IDENTITY, commit, run

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


def test_only_heads_history_counts_not_other_branches_remote_refs_tags_or_the_stash(tmp_path):
    """A record is the team's only when the commit being released descends from it: a branch
    someone pushed (fetched as a remote-tracking ref), a tag or a stash entry authorises nothing."""
    team = tmp_path / "team.git"
    run(["git", "init", "-q", "--bare", "-b", "main", team])
    repo = tmp_path / "clone"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], cwd=repo)
    (repo / "README").write_text("ours\n")
    commit(repo, "start")
    run(["git", "remote", "add", "origin", team], cwd=repo)
    run(["git", "push", "-q", "origin", "main"], cwd=repo)

    other = tmp_path / "other"
    run(["git", "clone", "-q", team, other])
    run(["git", "switch", "-q", "-c", "unmerged"], cwd=other)
    lock(other / "releases", "1.3.0+titanic")
    commit(other, "a record nobody merged")
    run(["git", "push", "-q", "origin", "unmerged"], cwd=other)
    run(["git", "fetch", "-q", "origin"], cwd=repo)  # refs/remotes/origin/unmerged

    run(["git", "switch", "-q", "-c", "local-branch"], cwd=repo)
    lock(repo / "releases", "1.4.0+titanic")
    commit(repo, "on a local branch")
    run(["git", "tag", "v1.4"], cwd=repo)
    run(["git", "switch", "-q", "main"], cwd=repo)
    lock(repo / "releases", "1.5.0+titanic")
    run(["git", "add", "releases"], cwd=repo)
    run(["git", "stash", "-q"], cwd=repo, env={**os.environ, **GIT_IDENTITY})  # refs/stash
    assert not (repo / "releases").exists()

    for version in ("1.3.0+titanic", "1.4.0+titanic", "1.5.0+titanic"):
        assert recorded(version, repo / "releases") is None, version
    assert "origin/unmerged" in run(["git", "branch", "-r"], cwd=repo).stdout  # git log --all reached all three

    run(["git", "merge", "-q", "--no-edit", "origin/unmerged"], cwd=repo, env={**os.environ, **GIT_IDENTITY})
    run(["git", "rm", "-q", "-r", "releases"], cwd=repo)
    commit(repo, "records moved away after the merge")
    record = recorded("1.3.0+titanic", repo / "releases")  # merged: in HEAD's history now
    assert record.sha256 == {WHEEL, SDIST} and record.where.startswith("releases/mymodel-1.3.0+titanic.txt in commit ")
