"""The venv every target makes first: it says what it does, pip's progress on a terminal only."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, consumer_env, ensure_wheelhouse, run

pytestmark = pytest.mark.integration

FIRST_RUN = "installing the pinned dependencies (first run only, about 2 minutes)"
PIP_PROGRESS = ("Processing", "Installing collected packages", "Successfully installed")


def make_venv(venv: Path, requirements: Path) -> list[str]:
    """``make venv`` of this repository into ``venv`` (the tiny ``requirements``, no index)."""
    return ["make", "--no-print-directory", "-C", str(REPO), "venv", f"VENV={venv}",
            f"REQUIREMENTS={requirements}", f"PYTHON={sys.executable}"]


def on_a_terminal(command: list[str], env: dict[str, str]) -> str:
    """What ``command`` writes to a terminal (a pseudo-terminal as its stdout and stderr)."""
    controller, terminal = pty.openpty()
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")
    os.close(controller)
    return b"".join(chunks).decode(errors="replace")


def test_the_first_run_says_so_and_shows_pip_only_on_a_terminal(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{next(ensure_wheelhouse().glob('packaging-*.whl'))}\n")
    venv = tmp_path / "venv"
    env = consumer_env(PIP_NO_INDEX="1")  # offline: pip and the one wheel are all there is

    quiet = run(make_venv(venv, requirements), env=env)  # not a terminal, as in CI
    assert f"creating {venv} and {FIRST_RUN}" in quiet.stderr
    assert not any(line in quiet.stderr for line in PIP_PROGRESS), quiet.stderr
    assert quiet.stdout == ""  # `make version` or `make lock > file` print only their answer
    run([venv / "bin/python", "-c", "import packaging"])

    assert run(make_venv(venv, requirements), env=env).stderr == ""  # ready: nothing to do, nothing said
    requirements.write_text(f"{requirements.read_text()}{next(ensure_wheelhouse().glob('cloudpickle-*.whl'))}\n")
    os.utime(requirements, (os.stat(venv / ".ready").st_mtime + 10,) * 2)  # the pins changed
    shown = on_a_terminal(make_venv(venv, requirements), env)
    assert f"updating {venv}: installing the pinned dependencies of {requirements}" in shown
    assert all(line in shown for line in PIP_PROGRESS), shown
    assert "Successfully installed cloudpickle" in shown
