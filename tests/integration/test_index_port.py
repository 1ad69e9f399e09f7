"""The clone remembers the index it started: a port given once (``make index INDEX_PORT=...``, or any
target that starts the index) is the one every later target uses while INDEX_PORT is unset, and
``make index-status`` lists every index this clone has running. An explicit INDEX_PORT still wins."""

from __future__ import annotations

import os

import pytest

from tests.helpers import assert_clean_error, copy_repo, free_port, index_env, make

pytestmark = pytest.mark.integration


def test_a_port_given_once_is_the_clones_until_another_is_given(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if k not in ("INDEX_PORT", "INDEX_STATE", "INDEX_URL", "MAKEFLAGS")}
    env.update(INDEX_DIR=str(tmp_path / "packages"), INDEX_FALLBACK="off")
    port, other = free_port(), free_port()
    url = f"http://127.0.0.1:{port}/"
    try:
        started = make(repo, "index", env, f"INDEX_PORT={port}").stdout
        assert f"index: running at {url}" in started and "while INDEX_PORT is unset" in started, started
        assert (repo / "index/.state/port").read_text() == f"{port}\n"
        assert make(repo, "index-status", env).stdout.startswith(f"index: running at {url} ")  # no INDEX_PORT given
        elsewhere = make(repo, "index-status", env, f"INDEX_PORT={other}").stdout  # an explicit port wins
        assert elsewhere.splitlines() == [
            f"index: not running (would serve http://127.0.0.1:{other}/)",
            f"also running from this clone: {url} (pid {elsewhere.split('(pid ')[1].split(')')[0]}); "
            f"use it with INDEX_PORT={port}"], elsewhere
        # An index with its state elsewhere (INDEX_STATE: a test's, a second index) is not the clone's default.
        separate = index_env(tmp_path / "separate")
        make(repo, "index", separate)
        make(repo, "index-stop", separate)
        assert (repo / "index/.state/port").read_text() == f"{port}\n"
        assert make(repo, "index-stop", env).stdout.strip() == "index: stopped"  # the remembered one
        assert make(repo, "index-status", env).stdout.strip() == f"index: not running (would serve {url})"
    finally:
        make(repo, "index-stop", env, f"INDEX_PORT={port}", check=False)
    (repo / "index/.state/port").write_text("eighty\n")
    assert_clean_error(make(repo, "index-status", env, check=False), "index/.state/port",
                       "holds 'eighty', not a port; delete it, or start the index again with make index INDEX_PORT=")
