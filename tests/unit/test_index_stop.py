"""Stopping the index does not wait for a process that has already exited."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from index.control import _exited, _stat_fields, terminate

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



# A process whose main thread has exited (its leader shows Z in /proc) while another of its threads still
# runs, holding the open files all its threads share: what a server under SIGTERM is for a moment while its
# threads exit (a loaded machine made that moment long enough for make index-stop to return inside it).
LEADER_GONE_FIRST = r"""
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
print(flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_is_not_taken_for_exited_while_a_thread_of_it_still_runs():
    child = subprocess.Popen([sys.executable, "-c", LEADER_GONE_FIRST], stdout=subprocess.PIPE, text=True)
    try:
        child.stdout.readline()
        deadline = time.monotonic() + 1
        while _stat_fields(child.pid)[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _stat_fields(child.pid)[0] == "Z" and len(os.listdir(f"/proc/{child.pid}/task")) == 2
        assert not _exited(child.pid)  # its thread still holds what the process opened
        deadline = time.monotonic() + 10
        while not _exited(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _exited(child.pid) and time.monotonic() < deadline
    finally:
        child.kill()
        child.wait()
