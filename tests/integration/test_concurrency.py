"""Releases at once: serialised within a clone, kept apart by the index across clones."""

from __future__ import annotations

import hashlib
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import VENV, copy_repo, index_env, pipeline, train_quickly

pytestmark = pytest.mark.integration


def start_release(repo: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(["make", "--no-print-directory", "-C", str(repo), "release", f"VENV={VENV}", "BUMP=patch"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(processes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    # All read at once: a release blocked on a full pipe (warnings) while holding the clone's
    # release lock kept the one read first waiting for the lock until RELEASE_LOCK_TIMEOUT.
    with ThreadPoolExecutor(len(processes)) as readers:
        outputs = list(readers.map(lambda p: p.communicate(timeout=900), processes))
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def published_files(env: dict) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(env["INDEX_DIR"]).glob("mymodel-*")}


def assert_complete_and_verifiable(env: dict, versions: list[str], clones: list[Path]) -> None:
    files = published_files(env)
    assert sorted(files) == sorted(f"mymodel-{v}{suffix}" for v in versions
                                   for suffix in (".tar.gz", "-py3-none-any.whl"))
    for version in versions:  # each version's files equal those its releasing clone built and locked
        owners = [c for c in clones if (c / f"releases/mymodel-{version}.txt").is_file()]
        assert len(owners) == 1, version
        lock = (owners[0] / f"releases/mymodel-{version}.txt").read_text()
        for suffix in (".tar.gz", "-py3-none-any.whl"):
            name = f"mymodel-{version}{suffix}"
            assert files[name] == hashlib.sha256((owners[0] / "dist" / name).read_bytes()).hexdigest()
            assert f"--hash=sha256:{files[name]}" in lock


def test_four_releases_at_once_from_one_clone_are_serialised(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    train_quickly(repo)
    env = index_env(tmp_path)
    try:
        results = finish([start_release(repo, env) for _ in range(4)])
        for code, out, err in results:
            assert code == 0, out + err
        versions = sorted(re.search(r"released mymodel (\S+)", out).group(1) for _, out, _ in results)
        assert versions == ["1.1.1+titanic", "1.1.2+titanic", "1.1.3+titanic", "1.1.4+titanic"]
        assert sum("waiting for another release" in out for _, out, _ in results) >= 1
        assert_complete_and_verifiable(env, versions, [repo])
        assert '"1.1.4+titanic"' in (repo / "src/mymodel/version.py").read_text()
    finally:
        pipeline(repo, env, "index-stop", check=False)


def test_two_clones_racing_on_one_index_never_publish_a_version_twice(tmp_path):
    clones = [copy_repo(tmp_path / name) for name in ("a", "b")]
    env = index_env(tmp_path)  # one index (port, folder, credentials) for both clones
    try:
        pipeline(clones[0], env, "index")
        results = finish([start_release(clone, env) for clone in clones for _ in range(2)])
        succeeded = []
        for code, out, err in results:
            if code == 0:
                succeeded.append(re.search(r"released mymodel (\S+)", out).group(1))
            else:  # the loser of a race stops cleanly and says what to do
                assert "Traceback" not in out + err and "Error:" in err and "make release" in err, err
        assert succeeded and len(succeeded) == len(set(succeeded))
        assert_complete_and_verifiable(env, sorted(set(succeeded)), clones)
        assert not [p for c in clones for p in (c / "dist").glob(".partial-*")]
    finally:
        pipeline(clones[0], env, "index-stop", check=False)
