"""A release is published whole and once (issue 27): a number a failed release took back is never
published again, whatever its bytes; a release killed (SIGKILL) between any two of its uploads leaves
nothing pip or uv would install, and the next release of another clone, which has no trace of it,
reports the abandoned version and takes it back. Real make release, index, twine, pip and uv."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import (VENV, assert_clean_error, consumer_env, copy_repo, fill_index, index_env, make, pipeline,
                           run, train_quickly)
from tests.integration.test_index import credentials, get, post_form, real_sdist
from tests.integration.test_index_uploads import upload_status_and_reason

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone that released 1.1.1+titanic to its own index, which calls a version abandoned after an hour."""
    tmp = tmp_path_factory.mktemp("sealed")
    repo = copy_repo(tmp / "a")
    train_quickly(repo)
    env = index_env(tmp, INDEX_ABANDONED_AFTER="3600")
    fill_index(Path(env["INDEX_DIR"]))
    make(repo, "release", env)
    yield tmp, repo, env
    pipeline(repo, env, "index-stop", check=False)


def simple_url(env: dict) -> str:
    return f"http://127.0.0.1:{env['INDEX_PORT']}/simple/"


def pip_picks(env: dict, python: Path, requirement: str = "mymodel>=0") -> str:
    """The version ``pip install`` would install for ``requirement`` from the index (a dry run, fresh)."""
    report = run([python, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-cache-dir", "--ignore-installed",
                  "--quiet", "--report", "-", "--index-url", simple_url(env), requirement], env=consumer_env()).stdout
    [installed] = json.loads(report)["install"]
    return installed["metadata"]["version"]


def uv_picks(env: dict, python: Path, requirement: str = "mymodel>=0") -> str:
    """The version ``uv pip install`` would install (a dry run, its cache refreshed)."""
    result = run([VENV / "bin" / "uv", "pip", "install", "--dry-run", "--refresh", "--no-deps", "--python", python,
                  "--index-url", simple_url(env), requirement], env=consumer_env(UV_PYTHON_DOWNLOADS="never"))
    return re.search(r"\+ mymodel==(\S+)", result.stdout + result.stderr).group(1)


def served_versions(env: dict) -> list[str]:
    status, page = get(f"{simple_url(env)}mymodel/")
    assert status == 200, page
    return sorted(set(re.findall(r">mymodel-(\d+\.\d+\.\d+\+[a-z0-9.]+?)(?:-py3-none-any\.whl|\.tar\.gz)<", page.decode())))


def test_a_number_taken_back_by_a_failing_release_is_never_published_again_with_other_bytes(clone, tmp_path):
    _, repo, env = clone
    failed = make(repo, "release", {**env, "RELEASE_FAULT": "verify"}, "BUMP=patch", check=False)
    assert_clean_error(failed, "injected fault at verify", "removed the partial 1.1.2+titanic from the index")
    assert served_versions(env) == ["1.1.1+titanic"]
    # other bytes under the burned number: refused by the index, with the reason in one line
    status, reason = upload_status_and_reason(env, "mymodel-1.1.2+titanic.tar.gz", real_sdist(tmp_path, "1.1.2+titanic")
                                              .read_bytes())
    assert status == 409 and "mymodel 1.1.2+titanic was taken back on" in reason and "is burned" in reason
    # make version and make release move past it and say why
    version = make(repo, "version", env, "BUMP=patch")
    assert version.stdout.strip() == "1.1.3+titanic"
    assert re.search(r"1\.1\.2\+titanic was used before \(taken back on \S+Z\): releasing 1\.1\.3\+titanic",
                     version.stderr), version.stderr
    released = make(repo, "release", env, "BUMP=patch")
    assert "1.1.2+titanic was used before (taken back on " in released.stdout
    assert "released mymodel 1.1.3+titanic" in released.stdout
    assert served_versions(env) == ["1.1.1+titanic", "1.1.3+titanic"]


def test_a_release_killed_between_any_two_uploads_leaves_nothing_installable_and_another_clone_takes_it_back(
        clone, pip_venv, tmp_path):
    tmp, repo, env = clone
    newest = served_versions(env)[-1]  # 1.1.3+titanic after the test above, 1.1.1+titanic alone
    python = pip_venv(tmp_path / "venv")
    killed_versions = []
    for point in ("sdist-upload", "wheel-upload", "onnx-upload"):  # the sdist, the wheel, the -onnx wheel, the seal
        killed = make(repo, "release", {**env, "RELEASE_FAULT": f"{point}:sigkill"}, "BUMP=patch", check=False)
        assert killed.returncode != 0 and "Killed" in killed.stderr, killed.stdout + killed.stderr
        if killed_versions:  # the one before, still young: another clone's release in progress for all it knows
            assert f"mymodel {killed_versions[-1]} (" in killed.stdout and "left alone" in killed.stdout
        [partial] = (repo / "dist").glob(".partial-*")
        killed_versions.append(partial.name.split("-")[1])
        shutil.rmtree(partial)  # the job's workspace is gone with it (a cancelled CI runner): only the index knows
        assert pip_picks(env, python) == newest
        assert uv_picks(env, python) == newest
    assert len(set(killed_versions)) == 3  # each took the next number: the ones before were used
    stored = sorted(p.name for p in Path(env["INDEX_DIR"]).glob("mymodel*") if any(v in p.name for v in killed_versions))
    assert len(stored) == 1 + 2 + 3  # the sdist; the sdist and the wheel; and the -onnx wheel
    assert all(v not in served_versions(env) for v in killed_versions)

    other = copy_repo(tmp / "b", repo)  # another clone: no dist/.partial-*, no record of those releases
    listed = make(other, "versions", env).stdout
    for version in killed_versions:
        assert re.search(rf"in progress: mymodel {re.escape(version)} \(.+\), uploaded \d+ (s|min) ago: served nowhere", listed)
    status, answer = post_form(env, "take-back", {"name": "mymodel", "version": killed_versions[0]}, credentials(env))
    assert status == 409 and "is not abandoned" in answer["error"]  # younger than the index's bound: left alone

    pipeline(repo, env, "index-stop")  # the same index, now calling a version abandoned at once
    recovered = make(other, "release", {**env, "INDEX_ABANDONED_AFTER": "0"})
    for version in killed_versions:
        assert re.search(rf"abandoned: mymodel {re.escape(version)} \(.+\), uploaded .+ ago and never sealed .+: "
                         "taken back; its number is not used again", recovered.stdout), recovered.stdout
    assert not any(v in p.name for p in Path(env["INDEX_DIR"]).iterdir() for v in killed_versions)
    assert pip_picks(env, python) == newest and uv_picks(env, python) == newest
    numbered = make(other, "version", env, "BUMP=patch")
    assert all(f"{v} (taken back on " in numbered.stderr for v in killed_versions), numbered.stderr
    assert numbered.stdout.strip() not in killed_versions
    pipeline(repo, env, "index-stop")
    pipeline(repo, env, "index")  # back to the module's bound
