"""Large transfers draw a bar on a terminal and nothing elsewhere."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from pipeline import progress
from tests.helpers import REPO

TRANSFER = ("from pipeline import progress\n"
            "with progress.transfer('downloading big.whl', progress.LARGE_FILE) as advance:\n"
            "    for _ in range(4):\n"
            "        advance(progress.LARGE_FILE // 4)\n")


def drawn(stderr_is_a_terminal: bool) -> str:
    """What a transfer of a large file writes to stderr, a terminal's or a pipe."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'src'}", "COLUMNS": "100"}
    stderr = secondary if stderr_is_a_terminal else subprocess.PIPE
    child = subprocess.Popen([sys.executable, "-c", TRANSFER], stderr=stderr, env=env, cwd=REPO)
    os.close(secondary)
    if not stderr_is_a_terminal:
        out = child.communicate(timeout=60)[1]
        os.close(primary)
        return out.decode()
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    child.wait(timeout=60)
    return b"".join(chunks).decode(errors="replace")


def test_a_large_transfer_shows_a_bar_on_a_terminal_only():
    assert "downloading big.whl" in drawn(stderr_is_a_terminal=True)
    assert drawn(stderr_is_a_terminal=False) == ""


def test_only_large_files_on_a_terminal_get_a_bar():
    primary, secondary = pty.openpty()
    try:
        with os.fdopen(secondary, "w", closefd=False) as terminal:
            assert progress.shown(progress.LARGE_FILE, terminal)
            assert not progress.shown(progress.LARGE_FILE - 1, terminal)
            assert not progress.shown(None, terminal)
    finally:
        os.close(primary)
        os.close(secondary)
