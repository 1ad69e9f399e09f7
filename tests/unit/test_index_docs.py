"""The index's /docs/: which files of the built site it may serve (test_docs_site.py serves them for real),
and an app that starts no watcher thread of its own now that watchdog (MkDocs') is installed."""

from __future__ import annotations

import threading

from index.docs import site_file
from index.server import make_app


def test_only_regular_files_inside_the_site_are_served(tmp_path):
    site, outside = tmp_path / "site", tmp_path / "secret.txt"
    (site / "consume").mkdir(parents=True)
    (site / "consume" / "index.html").write_text("consume")
    (site / "index.html").write_text("home")
    (site / ".env").write_text("hidden")
    outside.write_text("secret")
    (site / "leak.txt").symlink_to(outside)
    (site / "linked").symlink_to(site / "consume", target_is_directory=True)
    (site / "empty").mkdir()
    assert site_file(site, "") == site / "index.html"
    assert site_file(site, "consume/") == site_file(site, "consume") == site / "consume" / "index.html"
    for refused in ("../secret.txt", "consume/../../secret.txt", ".env", "leak.txt", "linked/", "linked/index.html",
                    "empty/", "nope.html", "consume\\..\\index.html", "a\x00b"):
        assert site_file(site, refused) is None, refused


def test_the_app_starts_no_watchdog_observer(tmp_path):
    (tmp_path / "htpasswd").write_text("")
    before = {thread.ident for thread in threading.enumerate()}
    make_app(tmp_path / "packages", tmp_path / "htpasswd", docs=tmp_path / "site")
    started = [thread for thread in threading.enumerate() if thread.ident not in before]
    assert not [thread for thread in started if type(thread).__module__.startswith("watchdog")], started
