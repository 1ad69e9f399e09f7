"""Stopping the index does not wait for a process that has already exited."""

from __future__ import annotations

import subprocess
import sys
import time

from index.control import terminate

# A process that adopts orphans (PR_SET_CHILD_SUBREAPER, as an init does) and never collects
# their exit status, as a container's PID 1 that does not reap: it starts a server-like
# process in its own session through a parent that exits at once, prints its pid and waits.
ADOPTER = r"""
import ctypes, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.run([sys.executable, "-c",
                "import subprocess, sys; p = subprocess.Popen(['sleep', '300'], start_new_session=True); print(p.pid)"])
sys.stdout.flush()
time.sleep(300)
"""


def test_an_index_adopted_by_a_process_that_never_reaps_is_stopped_at_once():
    adopter = subprocess.Popen([sys.executable, "-c", ADOPTER], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(adopter.stdout.readline())
        started = time.monotonic()
        assert terminate(pid)
        # It exited on SIGTERM; its exit status is never collected, and stop() must not wait for that
        # (it waited 10 s and sent SIGKILL to a dead process group).
        assert time.monotonic() - started < 5
    finally:
        adopter.kill()
        adopter.wait()

