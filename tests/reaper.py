"""Every process a test run started ends with the run, however the run ends.

A test index outlives the ``make release`` that starts it (its own session, by
design), so a run stopped by Ctrl-C, a timeout or SIGKILL used to leave its
indexes (and devpi servers) running. At its start, pytest adds a tag of its own
(``<pid>-<start ns>``) to ``MYMODEL_TEST_RUNS`` in its environment, which every
process started during the run inherits, and starts this module as a reaper in
a session of its own, out of reach of a signal to the run's process group. The
reaper waits on a pidfd of pytest and on a pipe from it; when pytest ends, or
says it is done, it terminates every process whose environment carries the tag.

A parent-death signal (PR_SET_PDEATHSIG) cannot do this: it fires when the
process's parent dies, and an index's parent is the short-lived pipeline
process that started it, not pytest.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUNS_VARIABLE = "MYMODEL_TEST_RUNS"  # space-separated: a nested run (make test in a test) adds its own
# Spared: the resource trackers of multiprocessing and of joblib's loky (training's worker processes) end as
# soon as the process that started them does, after its exit handlers have told them what to clean up;
# killed first, those handlers start a new one that prints a KeyError for every resource it never saw.
SPARED = (b"resource_tracker import main",)
GRACE_SECONDS = 10  # after SIGTERM, before SIGKILL
_REAPER = pytest.StashKey[subprocess.Popen]()


def tagged(tag: str) -> dict[int, int]:
    """pidfds of the processes whose environment carries ``tag``, by pid."""
    wanted = f"{RUNS_VARIABLE}=".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            pidfd = os.pidfd_open(int(entry.name))  # first: the pid cannot be reused under us after this
        except OSError:
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            environment = []
        runs = next((v[len(wanted):].decode(errors="replace").split() for v in environment if v.startswith(wanted)), [])
        if tag in runs and not _spared(entry):
            found[int(entry.name)] = pidfd
        else:
            os.close(pidfd)
    return found


def _spared(process: Path) -> bool:
    try:
        command = (process / "cmdline").read_bytes()
    except OSError:
        return False
    return any(pattern in command for pattern in SPARED)


def reap(tag: str) -> None:
    """SIGTERM every tagged process, SIGKILL those still there after the grace period."""
    for _ in range(3):  # a process that was starting a child while we looked: look again
        found = tagged(tag)
        if not found:
            return
        for pidfd in found.values():
            _signal(pidfd, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        alive = list(found.values())
        while alive and time.monotonic() < deadline:
            ended, _, _ = select.select(alive, [], [], max(0.0, deadline - time.monotonic()))
            alive = [pidfd for pidfd in alive if pidfd not in ended]
        for pidfd in alive:
            _signal(pidfd, signal.SIGKILL)
        for pidfd in found.values():
            os.close(pidfd)


def _signal(pidfd: int, number: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, number)
    except ProcessLookupError:
        pass


def start(tag: str) -> subprocess.Popen:
    """The reaper of the run tagged ``tag`` (this process): untagged itself, in its own session."""
    environment = {k: v for k, v in os.environ.items() if k != RUNS_VARIABLE}
    return subprocess.Popen([sys.executable, "-m", "tests.reaper", str(os.getpid()), tag], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=environment, cwd=Path(__file__).resolve().parent.parent)


def pytest_configure(config) -> None:
    tag = f"{os.getpid()}-{time.time_ns()}"
    config.stash[_REAPER] = start(tag)
    os.environ[RUNS_VARIABLE] = " ".join(filter(None, (os.environ.get(RUNS_VARIABLE), tag)))


def shut_down_worker_pools() -> None:
    """joblib's loky workers (training's cross-validations, run in this process by unit tests) are shut down
    by their executor: killed by the reaper, the executor's threads report each one and its children. The
    next training starts new ones, which take this process's sys.path as it is then."""
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(reusable, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)


def pytest_unconfigure(config) -> None:
    """The run is done: what it left running ends before pytest exits."""
    shut_down_worker_pools()
    reaper = config.stash.get(_REAPER, None)
    if reaper is not None:
        reaper.stdin.close()
        try:
            reaper.wait(timeout=3 * GRACE_SECONDS + 30)
        except subprocess.TimeoutExpired:
            pass  # it goes on by itself


def main(owner: int, tag: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for pytest; its end is ours
    try:
        owner_ended = os.pidfd_open(owner)
    except ProcessLookupError:
        owner_ended = None
    if owner_ended is not None:
        select.select([owner_ended, sys.stdin], [], [])  # pytest ended, or closed our stdin: done
    reap(tag)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
