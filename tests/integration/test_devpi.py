"""Releasing to a real devpi-server primary (make devpi) and installing from its replica."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest

from pipeline.index_api import version_of
from tests.helpers import PYTHON, assert_clean_error, consumer_env, copy_repo, free_port, index_env, make, run

pytestmark = pytest.mark.integration

FIRST, SECOND = "1.1.1+titanic", "1.1.2+titanic"


@pytest.fixture(scope="module")
def devpi(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("devpi")
    repo = copy_repo(tmp / "repo")
    # INDEX_PORT and INDEX_STATE of a private embedded index: a release that missed devpi fails elsewhere.
    env = {k: v for k, v in index_env(tmp).items() if not k.startswith(("INDEX_URL", "INDEX_READ", "DEVPI_", "TWINE_"))}
    env.update(DEVPI_PORT=str(free_port()), DEVPI_REPLICA_PORT=str(free_port()))
    started = make(repo, "devpi", env)
    try:
        yield repo, env, started.stdout
    finally:
        make(repo, "devpi-stop", env, check=False)


def urls(env: dict[str, str]) -> tuple[str, str]:
    return (f"http://127.0.0.1:{env['DEVPI_PORT']}/mymodel/dev/",
            f"http://127.0.0.1:{env['DEVPI_REPLICA_PORT']}/mymodel/dev/+simple/")


def served_versions(simple_url: str) -> set[str]:
    page = run(["curl", "-sf", "-H", "Accept: application/vnd.pypi.simple.v1+json", f"{simple_url}mymodel/"],
               check=False).stdout
    return {version_of(f["filename"]) for f in json.loads(page)["files"]} if page else set()


def test_make_devpi_keeps_generated_credentials_owner_only_and_starting_twice_is_harmless(devpi):
    repo, env, output = devpi
    state = repo / "index" / ".state" / "devpi"
    assert urls(env)[1] in output and "make release INDEX=devpi" in output
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("credentials.json", "secret"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    creds = json.loads((state / "credentials.json").read_text())
    assert creds["password"] not in output and creds["root_password"] not in output
    assert make(repo, "devpi", env).stdout == output  # the running pair is reused, nothing re-created


def test_a_fault_mid_upload_takes_the_version_back_on_devpi(devpi):
    repo, env, _ = devpi
    failed = make(repo, "release", {**env, "RELEASE_FAULT": "after-first-upload"}, "INDEX=devpi", check=False)
    assert failed.returncode != 0 and f"removed the partial {FIRST}" in failed.stdout + failed.stderr
    assert served_versions(urls(env)[0] + "+simple/") == set()
    log = (repo / "index/.state/devpi/primary.log").read_text()
    assert f"DELETE /mymodel/dev/mymodel/{FIRST}" in log and "deleted 'releasefile' link" in log


def test_yanking_on_devpi_is_refused_in_one_line(devpi):
    repo, env, _ = devpi
    assert_clean_error(make(repo, "yank", env, "INDEX=devpi", f"VERSION={FIRST}", "REASON=bad", check=False),
                       "devpi does not support yanking on private indexes")


def test_a_replica_that_never_serves_the_release_fails_it_and_takes_it_back(devpi):
    repo, env, _ = devpi
    dead_replica = f"http://127.0.0.1:{free_port()}/mymodel/dev/+simple/"
    failed = make(repo, "release", env, "INDEX=devpi", f"INDEX_READ_URL={dead_replica}", "INDEX_READ_TIMEOUT=1",
                  check=False)
    assert_clean_error(failed, f"{dead_replica}mymodel/ (INDEX_READ_URL) did not serve mymodel {FIRST}",
                       f"removed the partial {FIRST}")
    assert f"waiting up to 1 s for {dead_replica}mymodel/" in failed.stdout
    assert served_versions(urls(env)[0] + "+simple/") == set()


def test_release_twice_then_install_from_the_replica_also_with_the_primary_down(devpi, tmp_path):
    repo, env, _ = devpi
    primary, replica = urls(env)
    first = make(repo, "release", env, "INDEX=devpi").stdout
    assert f"read back {FIRST} from {replica} after" in first
    assert first.index("read back") < first.index(f"pip install --index-url {replica} mymodel=={FIRST}")
    creds = json.loads((repo / "index/.state/devpi/credentials.json").read_text())
    # The same, spelled out as anyone would from another host; nothing changed, so BUMP=patch.
    make(repo, "release", env, f"INDEX_URL={primary}", f"INDEX_USERNAME={creds['username']}",
         f"INDEX_PASSWORD={creds['password']}", "BUMP=patch")
    assert served_versions(primary + "+simple/") == {FIRST, SECOND}
    record = json.loads((repo / "index/.state/devpi/primary.json").read_text())
    os.killpg(record["pid"], signal.SIGKILL)
    target = tmp_path / "site"
    run([PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, "--index-url", replica,
         f"mymodel=={FIRST}"], env=consumer_env())
    installed = run([PYTHON, "-c", "import mymodel; print(mymodel.__version__, mymodel.list_models())"],
                    env={**consumer_env(), "PYTHONPATH": str(target)}, cwd=tmp_path).stdout
    assert installed.startswith(FIRST + " [")
    uv, uv_env = PYTHON.parent / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never")  # uv too, the primary still down
    run([uv, "venv", "--quiet", "--python", PYTHON, tmp_path / "uv-venv"], env=uv_env)
    run([uv, "pip", "install", "--quiet", "--no-deps", "--python", tmp_path / "uv-venv/bin/python",
         "--index-url", replica, f"mymodel=={SECOND}"], env=uv_env)
    assert len(list((tmp_path / "uv-venv").glob("lib/python*/site-packages/mymodel-1.1.2+titanic.dist-info"))) == 1
