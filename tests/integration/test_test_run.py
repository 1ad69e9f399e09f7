"""A test run leaves no index behind, however it ends: passed, Ctrl-C, SIGTERM (a timeout), SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import PYTHON, copy_repo

pytestmark = pytest.mark.integration

# A test that starts an index through the normal helpers and never stops it.
LEAKY_TEST = '''
import os, time
from pathlib import Path
from tests.helpers import index_env, pipeline

def test_starts_an_index(tmp_path):
    env = index_env(tmp_path)
    pipeline(Path(__file__).parent.parent, env, "index")
    Path(os.environ["INDEX_RECORD"]).write_text((tmp_path / "state" / "server.json").read_text())
    if os.environ.get("HOLD"):
        time.sleep(600)  # until the run is stopped
'''


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("test-run") / "repo")
    (repo / "tests" / "test_leaky.py").write_text(LEAKY_TEST)
    return repo


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as in a terminal, even when this run ignores SIGINT (.ci/run)


def alive(pid: int) -> bool:
    try:
        return "index.server" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


@pytest.mark.parametrize("ending", ["passed", signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["passed", "SIGINT", "SIGTERM", "SIGKILL"])
def test_no_index_outlives_the_run_that_started_it(clone, tmp_path, ending):
    record = tmp_path / "server.json"
    env = {**os.environ, "INDEX_RECORD": str(record), "HOLD": "" if ending == "passed" else "1"}
    command = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}",
               "tests/test_leaky.py"]
    run = subprocess.Popen(command, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 300
        while not record.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert record.exists(), run.communicate(timeout=60)[0].decode(errors="replace")
        pid = json.loads(record.read_text())["pid"]
        if ending != "passed":  # (a passing run may be over already: its index answered /health at start)
            assert alive(pid)
            run.send_signal(ending)
        output = run.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    if ending == "passed":
        assert "1 passed" in output and not alive(pid), output  # gone when pytest exits
    deadline = time.monotonic() + 30  # SIGTERM, SIGKILL: pytest ended at once; the reaper needs a moment
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), f"index.server {pid} outlived the test run ({ending})\n{output}"
