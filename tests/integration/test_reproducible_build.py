"""The same commit gives the same wheel, whatever the builder's umask."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import PYTHON, copy_repo, index_env, pipeline

pytestmark = pytest.mark.integration
VERSION = "1.1.1+titanic"


def build_under_umask(repo, env, umask: int) -> bytes:
    result = subprocess.run([str(PYTHON), "-m", "pipeline", "build", "--version", VERSION], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.umask(umask))
    assert result.returncode == 0, result.stderr
    wheel = repo / "dist" / f"mymodel-{VERSION}-py3-none-any.whl"
    data = wheel.read_bytes()
    wheel.unlink()
    return data


def test_the_wheel_is_byte_identical_under_different_umasks(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    env = index_env(tmp_path)  # a port nothing listens on: the build needs no index
    pipeline(repo, env, "train")
    private, group_writable = (build_under_umask(repo, env, umask) for umask in (0o077, 0o002))
    assert private == group_writable
