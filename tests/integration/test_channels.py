"""Channels as index views on the real index: promote A, then B, then roll back to A; after
each, pip pointed at the channel's URL with an unpinned or a ranged requirement picks the
promoted version; the history (make channels, the registry page). Then what must not be
promoted, and who may not promote. Each client following a channel with the commands ``make
consumer CHANNEL=`` prints: tests/integration/test_consumers.py."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import assert_clean_error, consumer_env, free_port, make, run

pytestmark = pytest.mark.integration


def channel_url(released, channel: str) -> str:
    return released.simple_url.removesuffix("simple/") + f"channels/{channel}/simple/"


def pip_would_install(index_url: str, requirement: str) -> str:
    """The mymodel version a fresh ``pip install`` from ``index_url`` picks (a dry run, metadata only)."""
    dry_run = run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
                   "--index-url", index_url, requirement], env=consumer_env()).stdout
    return re.search(r"Would install .*\bmymodel-(\S+)", dry_run).group(1)


def test_a_channel_view_serves_the_promoted_version_through_a_rollback(released):
    """What the view offers pip after each promotion (a dry run); each client's printed recipe
    following a channel: test_consumers.py::test_each_clients_printed_channel_recipe_follows_a_promotion_and_a_rollback."""
    old, new = released.versions
    url = channel_url(released, "staging")
    for number, version in enumerate((old, new, old), start=1):
        note = ["NOTE=rollback"] if number == 3 else []
        promoted = make(released.repo, "promote", released.env, f"VERSION={version}", "CHANNEL=staging", *note).stdout
        assert f"promoted mymodel {version} to staging (promotion {number})" in promoted
        assert f"pip install --index-url {url} mymodel " in promoted
        assert pip_would_install(url, "mymodel") == version
        assert pip_would_install(url, "mymodel>=1.1") == version
    assert pip_would_install(released.simple_url, "mymodel") == new  # the main index still offers every version

    table = make(released.repo, "channels", released.env).stdout
    rows = [line.split() for line in table.splitlines() if line.startswith("staging ")]
    assert [(row[1], row[2], row[6]) for row in rows] == [("1", old, "-"), ("2", new, "-"), ("3", old, "rollback")]
    # who: the user of the credential the index authenticated; built from: the commit the wheel records
    built_from = run(["git", "rev-parse", "HEAD"], cwd=released.repo).stdout.strip()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[3]) and row[4] == "mymodel"
               and row[5] == built_from for row in rows), table
    assert f"staging: pip install --index-url {url} mymodel" in table

    with urllib.request.urlopen(released.simple_url.removesuffix("simple/")) as response:
        page = response.read().decode()
    assert "<h2>Channels</h2>" in page and f"<h3>staging: {old}</h3>" in page
    assert [int(n) for n in re.findall(r'data-channel="staging" data-number="(\d+)"', page)] == [3, 2, 1]


def test_make_channels_shows_the_newest_promotions_and_pages_to_the_older_ones(released):
    """Promotions straight to the index (the upload credential), then make channels: the newest 20 of the
    channel, a line saying how to see the older ones, PAGE=2 and ALL=1."""
    creds = json.loads((Path(released.env["INDEX_STATE"]) / "credentials.json").read_text())
    token = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    old, new = released.versions
    for number in range(1, 23):
        request = urllib.request.Request(released.simple_url.removesuffix("simple/") + "+promote",
                                         data=f"channel=paged&name=mymodel&version={new if number % 2 else old}"
                                              f"&note=n{number}".encode().replace(b"+", b"%2B"),
                                         headers={"Authorization": f"Basic {token}"})
        urllib.request.urlopen(request, timeout=30).close()

    def numbers(*variables: str) -> tuple[list[int], str]:
        table = make(released.repo, "channels", released.env, "CHANNEL=paged", *variables).stdout
        return [int(line.split()[1]) for line in table.splitlines() if line.startswith("paged ")], table
    shown, table = numbers()
    assert shown == list(range(3, 23)) and "paged: 2 older promotions: make channels CHANNEL=paged PAGE=2" in table
    assert numbers("PAGE=2")[0] == [1, 2]
    assert numbers("ALL=1")[0] == list(range(1, 23))
    assert "staging" not in table  # CHANNEL= shows that channel only
    assert_clean_error(make(released.repo, "channels", released.env, "PAGE=0", check=False), "PAGE='0' is not a page")


def test_the_read_only_credential_cannot_promote(released):
    reader = json.loads((Path(released.env["INDEX_STATE"]) / "reader.json").read_text())
    token = base64.b64encode(f"{reader['username']}:{reader['password']}".encode()).decode()
    request = urllib.request.Request(released.simple_url.removesuffix("simple/") + "+promote",
                                     data=f"channel=reader&name=mymodel&version={released.versions[0]}".encode(),
                                     headers={"Authorization": f"Basic {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    as_reader = {**released.env, "INDEX_URL": released.simple_url.removesuffix("simple/"),
                 "INDEX_USERNAME": reader["username"], "INDEX_PASSWORD": reader["password"]}
    assert_clean_error(make(released.repo, "promote", as_reader, f"VERSION={released.versions[0]}", "CHANNEL=reader",
                            check=False), "refused our credentials (HTTP 403)")
    assert "reader" not in make(released.repo, "channels", released.env).stdout


def test_promote_refuses_a_bad_channel_an_unpublished_or_a_yanked_version(released):
    old, new = released.versions
    assert_clean_error(make(released.repo, "promote", released.env, f"VERSION={old}", "CHANNEL=Prod_EU", check=False),
                       "channel 'Prod_EU' is not lowercase letters, digits and hyphens", "use CHANNEL=prod-eu")
    assert_clean_error(make(released.repo, "promote", released.env, "VERSION=9.9.9+titanic", "CHANNEL=canary",
                            check=False), "mymodel 9.9.9+titanic is not published", f"{old}, {new}")
    try:
        make(released.repo, "yank", released.env, f"VERSION={new}", "REASON=bad split")
        refused = make(released.repo, "promote", released.env, f"VERSION={new}", "CHANNEL=canary", check=False)
        assert_clean_error(refused, f"mymodel {new} is yanked (bad split)", f"make unyank VERSION={new}")
    finally:
        make(released.repo, "unyank", released.env, f"VERSION={new}")
    assert "canary" not in make(released.repo, "channels", released.env).stdout


def test_promote_reads_the_yank_from_an_index_that_serves_html_only(released, tmp_path):
    """A plain static index (INDEX_URL, no PEP 691 JSON) marking 1.1.2 yanked with data-yanked;
    it serves no channels: promoting 1.1.1 there says so in one line."""
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
        no_channels = make(released.repo, "promote", env, f"VERSION={old}", "CHANNEL=canary", check=False)
        assert_clean_error(no_channels, "+promote answered HTTP 501", "this index serves no channels")
    finally:
        server.terminate()
        server.wait(timeout=10)
