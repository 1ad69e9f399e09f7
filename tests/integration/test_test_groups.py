"""make test's groups side by side (tests/run_groups.py as a program): real pytest processes, each group's output
printed whole, the failing group's included, times per group and in total, pytest's closing line last,
SIGINT left ignored for a background job, and SIGTERM ending every group."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import PYTHON, copy_repo
from tests.run_groups import ONE_THREAD

pytestmark = pytest.mark.integration

# Two files named as files of the index and releases groups; each test notes when it ran and how SIGINT is handled.
NOTED = '''
import os, signal, time
from pathlib import Path
import pytest
pytestmark = pytest.mark.integration

def note(name):
    started = time.time()
    time.sleep(float(os.environ["SLEEP"]))
    sigint = "ignored" if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else "handled"
    threads = ",".join(os.environ.get(v, "unset") for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"))
    Path(os.environ["NOTES"], name).write_text(f"{started} {time.time()} {sigint} {threads}")
'''
INDEX = NOTED + '''
def test_index_side():
    note("index")
    print("index-side output " * 50)
'''
RELEASES = NOTED + '''
def test_releases_side():
    note("releases")

def test_fails_with_its_reason():
    assert "the reason" == "shown whole", "RELEASES-GROUP-FAILURE"
'''
HOLD = '''
import os, time
from pathlib import Path
import pytest
pytestmark = pytest.mark.integration

def test_holds():
    Path(os.environ["NOTES"], "pid").write_text(str(os.getpid()))
    time.sleep(600)
'''


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("test-groups") / "repo")
    (repo / "tests" / "integration" / "test_index.py").write_text(INDEX)
    (repo / "tests" / "integration" / "test_release.py").write_text(RELEASES)
    (repo / "tests" / "integration" / "test_holding.py").write_text(HOLD)
    return repo


def run_groups(repo: Path, notes: Path, jobs: int, **env: str) -> subprocess.CompletedProcess:
    notes.mkdir()
    inherited = {k: v for k, v in os.environ.items() if k not in ONE_THREAD}  # as a shell without them set
    return subprocess.run([PYTHON, "-m", "tests.run_groups", "--jobs", str(jobs), "tests/integration/test_index.py",
                           "tests/integration/test_release.py"], cwd=repo, capture_output=True, text=True, timeout=300,
                          env={**inherited, "NOTES": str(notes), "SLEEP": "3", **env},
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # a background job


def spans(notes: Path) -> dict[str, tuple[float, float, str, str]]:
    """Each group's test: when it started and ended, its SIGINT handling, its OMP_NUM_THREADS,OPENBLAS_NUM_THREADS."""
    found = {}
    for group in ("index", "releases"):
        start, end, sigint, threads = (notes / group).read_text().split()
        found[group] = (float(start), float(end), sigint, threads)
    return found


def block(output: str, group: str) -> tuple[int, int]:
    start = output.index(f"==== {group}: its whole output")
    return start, output.index(f"==== {group}: end ====", start)


def test_groups_run_side_by_side_and_each_output_is_printed_whole(clone, tmp_path):
    result = run_groups(clone, tmp_path / "notes", jobs=2)
    output = result.stdout
    assert result.returncode == 1, output + result.stderr
    assert "2 groups, 2 at a time: index, releases" in output
    (index_start, index_end), (releases_start, releases_end) = block(output, "index"), block(output, "releases")
    assert index_end < releases_start or releases_end < index_start, output  # one piece each
    index_block, releases_block = output[index_start:index_end], output[releases_start:releases_end]
    assert "index-side output" not in output  # -q: a passing test's print is not shown...
    assert "RELEASES-GROUP-FAILURE" in releases_block and "1 failed, 1 passed" in releases_block  # ...a failure is
    assert "==> index: 1 tests" in index_block and "<== index: 1 ok in" in index_block
    assert re.search(r"^groups: index \d+s, releases \d+s; total \d+s$", output, re.MULTILINE), output
    assert "failed: releases (their whole output is above)" in output
    assert re.fullmatch(r"1 failed, 2 passed in [\d.]+s \(0:\d\d:\d\d\)", output.splitlines()[-1]), output
    ran = spans(tmp_path / "notes")
    assert max(start for start, *_ in ran.values()) < min(end for _, end, *_ in ran.values()), ran  # together
    assert {sigint for _, _, sigint, _ in ran.values()} == {"ignored"}  # a background job's groups ignore it
    assert {threads for *_, threads in ran.values()} == {"1,1"}  # no OpenMP/OpenBLAS pool spinning beside the others


def test_one_job_at_a_time_runs_the_groups_one_after_the_other_the_longest_first(clone, tmp_path):
    times = clone / ".cache" / "test-groups.json"
    times.parent.mkdir(exist_ok=True)
    times.write_text(json.dumps({"index": 10.0, "releases": 600.0}))  # the last run's: releases took longer
    result = run_groups(clone, tmp_path / "notes", jobs=1, OMP_NUM_THREADS="2")
    assert result.returncode == 1 and "2 groups, 1 at a time" in result.stdout
    ran = spans(tmp_path / "notes")
    assert ran["releases"][1] <= ran["index"][0]
    assert {threads for *_, threads in ran.values()} == {"2,1"}  # a thread count set by the caller is kept
    assert json.loads(times.read_text())["releases"] < 600  # this run's time, for the next


def test_sigterm_ends_every_group(clone, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    runner = subprocess.Popen([PYTHON, "-m", "tests.run_groups", "tests/integration/test_holding.py"], cwd=clone,
                              env={**os.environ, "NOTES": str(notes)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (notes / "pid").exists() and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.1)
        pid = int((notes / "pid").read_text())
        runner.send_signal(signal.SIGTERM)
        output = runner.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 143, output
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), f"the group's pytest {pid} outlived the runner\n{output}"
