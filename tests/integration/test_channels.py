"""Channels on the real index with real pip and uv: promote twice, follow the channel,
pin an earlier promotion, and refuse what must not be promoted."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import VENV, assert_clean_error, consumer_env, free_port, make, run

pytestmark = pytest.mark.integration


def uv_resolves(released, requirement: str) -> str:
    """The mymodel version uv resolves for ``requirement`` (from metadata only)."""
    compiled = run([VENV / "bin" / "uv", "pip", "compile", "--no-cache", "--python", sys.executable,
                    "--index-url", released.simple_url, "-"], input=requirement + "\n",
                   env=consumer_env(UV_PYTHON_DOWNLOADS="never")).stdout
    return re.search(r"^mymodel==(\S+)$", compiled, re.MULTILINE).group(1)


def pip_would_install(released, requirement: str) -> str:
    dry_run = run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
                   "--index-url", released.simple_url, requirement], env=consumer_env()).stdout
    return dry_run


def test_promote_twice_then_follow_the_channel_or_pin_a_promotion(released):
    old, new = released.versions
    first = make(released.repo, "promote", released.env, f"VERSION={old}", "CHANNEL=staging")
    assert f"promoted mymodel {old} to staging: mymodel-staging 1" in first.stdout
    second = make(released.repo, "promote", released.env, f"VERSION={new}", "CHANNEL=staging")
    assert "mymodel-staging 2" in second.stdout

    assert uv_resolves(released, "mymodel-staging") == new
    assert uv_resolves(released, "mymodel-staging==1") == old
    assert f"mymodel-{new}" in pip_would_install(released, "mymodel-staging")
    pinned = pip_would_install(released, "mymodel-staging==1")
    assert f"mymodel-{old}" in pinned and "mymodel-staging-1" in pinned

    rollback = make(released.repo, "promote", released.env, f"VERSION={old}", "CHANNEL=staging")
    assert "mymodel-staging 3" in rollback.stdout
    assert uv_resolves(released, "mymodel-staging") == old

    table = make(released.repo, "channels", released.env).stdout.splitlines()
    rows = [line.split() for line in table if line.startswith("mymodel-staging ")]
    assert [(row[1], row[2]) for row in rows] == [("1", old), ("2", new), ("3", old)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[3]) and re.fullmatch(r"[0-9a-f]{12}", row[4])
               for row in rows)


def test_promote_refuses_a_bad_channel_an_unpublished_or_a_yanked_version(released):
    old, new = released.versions
    assert_clean_error(make(released.repo, "promote", released.env, f"VERSION={old}", "CHANNEL=Prod_EU", check=False),
                       "channel 'Prod_EU' is not lowercase letters, digits and hyphens; use CHANNEL=prod-eu")
    # mymodel-onnx is the release's ONNX distribution, never a channel (and make channels does not list it).
    assert_clean_error(make(released.repo, "promote", released.env, f"VERSION={old}", "CHANNEL=onnx", check=False),
                       "channel 'onnx' is reserved: mymodel-onnx is the release's ONNX distribution")
    assert_clean_error(make(released.repo, "promote", released.env, "VERSION=9.9.9+titanic", "CHANNEL=canary",
                            check=False), "mymodel 9.9.9+titanic is not published", f"{old}, {new}")
    try:
        make(released.repo, "yank", released.env, f"VERSION={new}", "REASON=bad split")
        refused = make(released.repo, "promote", released.env, f"VERSION={new}", "CHANNEL=canary", check=False)
        assert_clean_error(refused, f"mymodel {new} is yanked (bad split)", f"make unyank VERSION={new}")
    finally:
        make(released.repo, "unyank", released.env, f"VERSION={new}")
    assert "mymodel-canary" not in make(released.repo, "channels", released.env).stdout


def test_promote_reads_the_yank_from_an_index_that_serves_html_only(released, tmp_path):
    """A plain static index (INDEX_URL, no PEP 691 JSON) marking 1.1.2 yanked with data-yanked."""
    old, new = released.versions
    page = tmp_path / "site" / "simple" / "mymodel" / "index.html"
    page.parent.mkdir(parents=True)
    names = [f"mymodel-{v}{suffix}" for v in (old, new) for suffix in ("-py3-none-any.whl", ".tar.gz")]
    yank = ' data-yanked="bad &amp; old"'
    page.write_text("\n".join(f'<a href="../../files/{n}"{yank if new in n else ""}>{n}</a>' for n in names))
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", tmp_path / "site"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        env = {**released.env, "INDEX_URL": f"http://127.0.0.1:{port}/", "INDEX_STATE": str(tmp_path / "state")}
        refused = make(released.repo, "promote", env, f"VERSION={new}", "CHANNEL=canary", check=False)
        assert_clean_error(refused, f"mymodel {new} is yanked (bad & old)")
    finally:
        server.terminate()
        server.wait(timeout=10)
