"""Channels as index views, from the index's real WSGI app over a folder of wheels (no server
process): promotions recorded through ``POST /+promote`` as the upload credential, and the
view ``/channels/<channel>/simple/`` serving exactly the promoted files of the model package
and of its siblings, in HTML and PEP 691 JSON, or nothing when one of them is gone or changed."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import urllib.parse
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from passlib.apache import HtpasswdFile

from index.channels import CHANNELS_FOLDER, ChannelStore
from index.server import make_app
from index.statedb import STATE_FILE, StateDB, StateError
from index.yanks import YANKS_FILE, YankStore
from tests.helpers import multipart_form
from tests.registry_wheels import release_files

JSON = "application/vnd.pypi.simple.v1+json"
UPLOADER, READER = ("mymodel", "upload-secret"), ("mymodel-reader", "read-secret")
OLD, NEW = "1.1.1+titanic", "1.1.2+titanic"
BUILT_FROM = "c0ffee" * 6 + "abcd"  # the commit tests/registry_wheels.py's models record


class Index:
    def __init__(self, tmp: Path) -> None:
        self.packages, self.state = tmp / "packages", tmp / "state"
        self.packages.mkdir(exist_ok=True)  # a folder that holds files already: the index's first start over it
        htpasswd = HtpasswdFile(str(tmp / "htpasswd"), new=True, default_scheme="sha256_crypt")
        for user, password in (UPLOADER, READER):
            htpasswd.set_password(user, password)
        htpasswd.save()
        self.app = make_app(self.packages, tmp / "htpasswd", state_dir=self.state)

    def call(self, method: str, path: str, accept: str = "text/html", form: dict | None = None,
             auth: tuple[str, str] | None = None, multipart: bool = False) -> tuple[int, dict[str, str], str]:
        content_type, body = (multipart_form(form or {}) if multipart else
                              ("application/x-www-form-urlencoded", urllib.parse.urlencode(form or {}).encode()))
        environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "HTTP_ACCEPT": accept,
                   "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
        if auth:
            environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        setup_testing_defaults(environ)
        started = []
        answer = b"".join(self.app(environ, lambda line, headers, exc=None: started.append((line, headers))))
        return int(started[0][0].split()[0]), dict(started[0][1]), answer.decode("utf-8", errors="replace")

    def upload(self, path: Path) -> None:
        """What pypiserver's upload handler does with a file it accepted (no HTTP form here)."""
        with open(path, "rb") as stream:
            self.app._pypiserver_config.backend.add_package(path.name, stream)

    def get(self, path: str, accept: str = "text/html") -> tuple[int, str]:
        status, _, body = self.call("GET", path, accept)
        return status, body

    def promote(self, channel: str, version: str, auth: tuple[str, str] = UPLOADER) -> tuple[int, dict]:
        # "commit" and "by" as an earlier client sent them: the index records neither
        status, _, body = self.call("POST", "/+promote", form={"channel": channel, "name": "mymodel",
                                                              "version": version, "commit": "forged", "by": "mallory",
                                                              "note": "ann: release train 12"},
                                    auth=auth)
        return status, json.loads(body) if body.startswith("{") else {"body": body}


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def filenames(page: str) -> list[str]:
    return [entry["filename"] for entry in json.loads(page)["files"]]


@pytest.fixture()
def index(tmp_path):
    index = Index(tmp_path)
    for version in (OLD, NEW):
        release_files(index.packages, version, {"LogReg": 0.8})
        # a sibling distribution at the same version (an ONNX package): a wheel of another name
        wheel, _ = release_files(tmp_path / "side", version, {"LogReg": 0.8})
        shutil.copy(wheel, index.packages / f"mymodel_onnx-{version}-py3-none-any.whl")
    # the data package: its versions follow the data, not the models'
    shutil.copy(wheel, index.packages / "mymodel_data-1.0.0+titanic-py3-none-any.whl")
    release_files(index.packages, "2.0.0", {"X": 0.1}, package="otherlib")
    return index


def test_a_channel_serves_only_the_promoted_version_and_follows_a_rollback(index):
    assert index.get("/channels/prod/simple/mymodel/")[0] == 404  # never promoted
    for version in (OLD, NEW, OLD):
        status, answer = index.promote("prod", version)
        assert status == 200, answer
        page = index.get("/channels/prod/simple/mymodel/", JSON)[1]
        assert json.loads(page)["versions"] == [version]
        assert filenames(page) == [f"mymodel-{version}-py3-none-any.whl", f"mymodel-{version}.tar.gz"]
        assert filenames(index.get("/channels/prod/simple/mymodel-onnx/", JSON)[1]) == [
            f"mymodel_onnx-{version}-py3-none-any.whl"]
        other = NEW if version == OLD else OLD
        html = index.get("/channels/prod/simple/mymodel/")[1]
        assert f"mymodel-{version}-py3-none-any.whl" in html and f"mymodel-{other}" not in html
    assert answer["promotion"]["number"] == 3 and answer["promotion"]["user"] == "mymodel"
    assert answer["promotion"]["commit"] == BUILT_FROM and answer["promotion"]["files"]["mymodel-onnx"] == {
        f"mymodel_onnx-{OLD}-py3-none-any.whl": sha256(index.packages / f"mymodel_onnx-{OLD}-py3-none-any.whl")}
    # the main index still serves every version; other projects are the main index's pages
    assert filenames(index.get("/simple/mymodel/", JSON)[1]) == [
        f"mymodel-{OLD}-py3-none-any.whl", f"mymodel-{OLD}.tar.gz", f"mymodel-{NEW}-py3-none-any.whl",
        f"mymodel-{NEW}.tar.gz"]
    assert index.get("/channels/prod/simple/otherlib/", JSON)[1] == index.get("/simple/otherlib/", JSON)[1]
    # the data package a model pins stays installable through the channel: every version, as on /simple/
    assert filenames(index.get("/channels/prod/simple/mymodel-data/", JSON)[1]) == [
        "mymodel_data-1.0.0+titanic-py3-none-any.whl"]
    history = json.loads(index.get("/channels/")[1])["channels"]["prod"]
    assert [(p["number"], p["version"], p["user"], p["commit"], p["note"]) for p in history] == [
        (n, v, "mymodel", BUILT_FROM, "ann: release train 12") for n, v in ((1, OLD), (2, NEW), (3, OLD))]


def test_the_view_links_files_hashes_metadata_and_yank_status_that_resolve_under_the_channel(index):
    index.promote("prod", NEW)
    YankStore(index.state / YANKS_FILE).set("mymodel", NEW, "bad split")
    entry = json.loads(index.get("/channels/prod/simple/mymodel/", JSON)[1])["files"][0]
    assert entry["yanked"] == "bad split" and entry["core-metadata"] and len(entry["hashes"]["sha256"]) == 64
    href = urllib.parse.urljoin("/channels/prod/simple/mymodel/", entry["url"])
    assert href == f"/channels/prod/packages/{entry['filename']}"
    status, wheel = index.get(href)
    assert status == 200 and wheel == index.get(f"/packages/{entry['filename']}")[1]
    status, metadata = index.get(href + ".metadata")
    assert status == 200 and metadata.startswith("Metadata-Version")
    html = index.get("/channels/prod/simple/mymodel/")[1]
    assert 'data-yanked="bad split"' in html and "data-core-metadata" in html
    index_page = json.loads(index.get("/channels/prod/simple/", JSON)[1])
    assert {"name": "mymodel"} in index_page["projects"]
    legacy = json.loads(index.get("/channels/prod/mymodel/json")[1])
    assert list(legacy["releases"]) == [NEW]


def test_promotion_refuses_the_reader_a_bad_channel_an_unknown_an_incomplete_an_unsealed_or_a_yanked_version(index, tmp_path):
    assert index.promote("prod", OLD, auth=READER)[0] == 403
    assert index.promote("prod", OLD, auth=("mymodel", "wrong"))[0] == 403
    assert index.call("POST", "/+promote", form={"channel": "prod", "name": "mymodel", "version": OLD})[0] == 401
    status, answer = index.promote("Prod_EU", OLD)
    assert status == 400 and "lowercase letters" in answer["error"]
    status, answer = index.promote("prod", "9.9.9+titanic")
    assert status == 404 and answer["versions"] == [OLD, NEW]
    _, sdist = release_files(tmp_path / "half", "1.1.3+titanic", {"LogReg": 0.8})
    shutil.copy(sdist, index.packages / sdist.name)  # by hand: a version with only its sdist
    status, answer = index.promote("prod", "1.1.3+titanic")
    assert status == 409 and "incomplete (the index serves only mymodel-1.1.3+titanic.tar.gz)" in answer["error"]
    for staged in release_files(tmp_path / "staged", "1.1.4+titanic", {"LogReg": 0.8}):
        index.upload(staged)  # uploaded, never sealed
    status, answer = index.promote("prod", "1.1.4+titanic")
    assert status == 409 and "1.1.4+titanic is not sealed" in answer["error"]
    YankStore(index.state / YANKS_FILE).set("mymodel", NEW, "bad split")
    status, answer = index.promote("prod", NEW)
    assert status == 409 and "yanked (bad split)" in answer["error"]
    status, _, body = index.call("POST", "/+promote", form={"channel": "prod", "name": "otherlib", "version": "2.0.0"},
                                 auth=UPLOADER)
    assert status == 400 and "serve mymodel" in body
    assert json.loads(index.get("/channels/")[1]) == {"channels": {}, "totals": {}, "page": 1, "limit": 20}


def test_a_promoted_file_removed_or_replaced_behind_the_index_makes_the_channel_fail_closed(index):
    assert index.promote("prod", NEW)[0] == 200
    wheel = index.packages / f"mymodel-{NEW}-py3-none-any.whl"
    original = wheel.read_bytes()
    wheel.unlink()  # behind the index's back
    for accept in ("text/html", JSON):
        status, body = index.get("/channels/prod/simple/mymodel/", accept)
        assert status == 404 and f"{wheel.name} is gone" in body and "serves nothing rather than other bytes" in body
    wheel.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # the same name, other bytes
    status, body = index.get("/channels/prod/simple/mymodel/", JSON)
    assert status == 404 and f"{wheel.name} changed (sha256 " in body
    assert index.get(f"/channels/prod/packages/{wheel.name}")[0] == 404  # never the other bytes
    assert index.get(f"/channels/prod/packages/{wheel.name}.metadata")[0] == 404
    assert index.get(f"/channels/prod/mymodel/json")[0] == 404
    assert index.get(f"/packages/{wheel.name}")[0] == 200  # the main index serves what its folder holds
    wheel.write_bytes(original)
    assert filenames(index.get("/channels/prod/simple/mymodel/", JSON)[1]) == [wheel.name, f"mymodel-{NEW}.tar.gz"]
    assert index.get(f"/channels/prod/packages/{wheel.name}")[0] == 200


def test_a_channel_serves_only_the_files_its_view_lists(index):
    assert index.promote("prod", NEW)[0] == 200
    for listed in (f"mymodel-{NEW}-py3-none-any.whl", f"mymodel-{NEW}.tar.gz", f"mymodel_onnx-{NEW}-py3-none-any.whl",
                   f"mymodel-{NEW}-py3-none-any.whl.metadata", "mymodel_data-1.0.0+titanic-py3-none-any.whl",
                   "otherlib-2.0.0-py3-none-any.whl"):
        assert index.get(f"/channels/prod/packages/{listed}")[0] == 200, listed
    for unlisted in (f"mymodel-{OLD}-py3-none-any.whl", f"mymodel-{OLD}.tar.gz", f"mymodel_onnx-{OLD}-py3-none-any.whl",
                     f"mymodel-{OLD}-py3-none-any.whl.metadata"):
        status, body = index.get(f"/channels/prod/packages/{unlisted}")
        assert status == 404 and f"not in channel prod, which serves mymodel {NEW}" in body, unlisted
        assert index.get(f"/packages/{unlisted}")[0] == 200  # the main index still serves it


def test_damaged_records_are_an_error_not_another_version(index, tmp_path):
    index.promote("prod", NEW)
    db = StateDB(index.state)
    with db.write() as connection:
        connection.execute("DROP TABLE promoted_files")  # a disk fault the index did not make
    status, body = index.get("/channels/prod/simple/mymodel/", JSON)
    assert status == 500 and "cannot be read" in body and STATE_FILE in body and str(tmp_path) not in body
    status, answer = index.promote("prod", OLD)
    assert status == 500 and "restore that file from a backup" in answer["error"] and str(tmp_path) not in answer["error"]
    (index.state / STATE_FILE).write_bytes(b"not a database" * 100)
    for leftover in index.state.glob(f"{STATE_FILE}-*"):
        leftover.unlink()
    with pytest.raises(StateError, match="cannot be used") as refused:  # a restart: the index refuses to start
        make_app(index.packages, tmp_path / "htpasswd", state_dir=index.state)
    assert str(tmp_path) not in str(refused.value)


def test_the_history_only_grows_and_pins_what_each_promotion_served(tmp_path):
    store = ChannelStore(StateDB(tmp_path))
    pins = {"mymodel": {"mymodel-1.1.1+titanic.tar.gz": "ab" * 32}}
    first = store.promote("prod", OLD, "2026-01-01T00:00:00Z", "mymodel", "abc", "ann\n<b>", pins)
    for n in range(2, 46):
        store.promote("prod", NEW if n % 2 else OLD, f"2026-01-{n % 28 + 1:02d}T00:00:00Z", "mymodel", "def", "", {})
    assert first.note == "ann <b>" and store.current("prod").number == 45 and store.current("staging") is None
    assert [p.number for p in store.history("prod")] == list(range(26, 46))  # the newest page, oldest first
    assert [p.number for p in store.history("prod", 20, page=3)] == [1, 2, 3, 4, 5]
    assert store.history("prod", 20, page=3)[0].files == pins
    assert len(store.history("prod", None)) == 45 and store.totals() == {"prod": 45}


def test_concurrent_promotions_get_one_number_each(tmp_path):
    import threading

    stores = [ChannelStore(StateDB(tmp_path)) for _ in range(4)]  # as gunicorn workers: one store each, one folder
    threads = [threading.Thread(target=lambda n=n: stores[n % 4].promote("prod", f"1.1.{n}", "now", "mymodel", "c", "",
                                                                          {}))
               for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = ChannelStore(StateDB(tmp_path)).history("prod", None)
    assert [p.number for p in history] == list(range(1, 21))
    assert sorted(p.version for p in history) == sorted(f"1.1.{n}" for n in range(20))


def test_an_earlier_indexs_histories_are_copied_at_the_first_start(tmp_path):
    packages, state = tmp_path / "packages", tmp_path / "state"
    for version in (OLD, NEW):
        release_files(packages, version, {"LogReg": 0.8})
    legacy = state / CHANNELS_FOLDER
    legacy.mkdir(parents=True)
    lines = [{"number": n, "version": v, "when": f"2026-01-0{n}T00:00:00Z", "user": "mymodel", "by": "ann",
              "commit": "abc"} for n, v in ((1, OLD), (2, NEW))]
    (legacy / "prod.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (legacy / "staging.jsonl").write_text(json.dumps(lines[0]) + "\n{cut sho")  # damaged: never another version
    index = Index.__new__(Index)
    index.packages, index.state = packages, state
    htpasswd = HtpasswdFile(str(tmp_path / "htpasswd"), new=True, default_scheme="sha256_crypt")
    htpasswd.set_password(*UPLOADER)
    htpasswd.save()
    index.app = make_app(packages, tmp_path / "htpasswd", state_dir=state)
    history = json.loads(index.get("/channels/")[1])
    assert history["totals"] == {"prod": 2}
    assert [(p["number"], p["version"], p["note"], p["commit"]) for p in history["channels"]["prod"]] == [
        (1, OLD, "ann", "abc"), (2, NEW, "ann", "abc")]
    assert filenames(index.get("/channels/prod/simple/mymodel/", JSON)[1]) == [
        f"mymodel-{NEW}-py3-none-any.whl", f"mymodel-{NEW}.tar.gz"]
    assert index.get("/channels/staging/simple/mymodel/")[0] == 404
    assert (legacy / "prod.jsonl").exists()  # left where it was
    index.app = make_app(packages, tmp_path / "htpasswd", state_dir=state)  # a restart copies nothing twice
    assert json.loads(index.get("/channels/")[1])["totals"] == {"prod": 2}


def test_a_private_index_guards_the_channel_views_as_its_pages(tmp_path):
    index = Index(tmp_path)
    release_files(index.packages, OLD, {"LogReg": 0.8})
    index.app = make_app(index.packages, tmp_path / "htpasswd", auth="read", state_dir=index.state)
    assert index.promote("prod", OLD)[0] == 200
    for path in ("/channels/prod/simple/mymodel/", "/channels/prod/simple/", "/channels/",
                 f"/channels/prod/packages/mymodel-{OLD}-py3-none-any.whl"):
        assert index.call("GET", path)[0] == 401, path
        assert index.call("GET", path, auth=READER)[0] == 200, path


def test_the_registry_page_shows_each_channel_and_its_history_escaped(index):
    hostile = '<script>alert(1)</script>'
    for version in (NEW, OLD):
        index.call("POST", "/+promote", form={"channel": "prod", "name": "mymodel", "version": version,
                                              "note": hostile}, auth=UPLOADER)
    page = index.get("/registry/mymodel/")[1]  # "/" lists the two model packages here
    section = page.split("<h2>Channels</h2>", 1)[1].split("<h2>", 1)[0]
    assert f"<h3>prod: {OLD}</h3>" in section
    assert "--index-url http://127.0.0.1/channels/prod/simple/ mymodel" in section
    assert [n[0] for n in section.split('data-number="')[1:]] == ["2", "1"] and "<script>" not in section
    assert f"<td>mymodel</td><td><code>{BUILT_FROM}</code></td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in section
    assert "older promotions" not in section
    for _ in range(21):
        index.promote("prod", NEW)
    section = index.get("/registry/mymodel/")[1].split("<h2>Channels</h2>", 1)[1]
    assert section.count('data-channel="prod"') == 20 and "3 older promotions: <code>make channels CHANNEL=prod PAGE=2" in section
    assert "<h2>Channels</h2>" not in index.get("/registry/otherlib/")[1]


def test_recent_changes_show_a_long_yank_reason_and_promotion_note_cut_and_escaped_and_make_audit_them_whole(index):
    """Before: a 100 kB note went onto the package page whole (escaped, bounded only by the request body); a yank
    reason, at most REASON_LIMIT characters since, is cut on the page too."""
    from index.audit import AuditLog
    from index.registry.views import SHOWN_TEXT
    from index.yanks import REASON_LIMIT
    from pipeline.commands.audit import line

    reason = "<script>alert(1)</script> & " + "<b>x</b>" * ((REASON_LIMIT - 30) // 8)
    assert SHOWN_TEXT < len(reason) <= REASON_LIMIT
    note = "<img src=x onerror=alert(1)> é " + "n" * 100_000  # (cgi splits a field's UTF-8 every 64 KiB: ASCII)
    assert index.call("POST", "/+yank", form={"name": "mymodel", "version": OLD, "reason": reason}, auth=UPLOADER,
                      multipart=True)[0] == 200
    assert index.promote("prod", NEW)[0] == 200
    assert index.call("POST", "/+promote", form={"channel": "prod", "name": "mymodel", "version": NEW, "note": note},
                      auth=UPLOADER, multipart=True)[0] == 200
    status, page = index.get("/registry/mymodel/")
    assert status == 200 and len(page) < 100_000
    changes = page.split("<h2>Recent changes</h2>", 1)[1].split("</table>", 1)[0]
    details = dict(reversed(re.findall(r"<td>(yank|promote)</td>.*?<td>([^<]*)</td></tr>", changes)))  # the newest
    yanked, promoted = details["yank"], details["promote"]
    assert yanked.startswith("reason &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;")
    assert yanked.endswith("…") and "<script>" not in changes and "<b>" not in changes and "<img" not in changes
    assert len(html.unescape(yanked)) == len("reason ") + SHOWN_TEXT + 1
    assert promoted.startswith("channel prod; note &lt;img src=x onerror=alert(1)&gt; é nn") and promoted.endswith("n…")
    assert len(html.unescape(promoted)) == len("channel prod; note ") + SHOWN_TEXT + 1
    status_cell = page.split(f'data-version="{OLD}"', 1)[1].split("</tr>", 1)[0]  # the version's yank badge too
    assert "&lt;script&gt;" in status_cell and "…" in status_cell and len(status_cell) < 5 * SHOWN_TEXT
    # make audit prints them whole
    entries = AuditLog(StateDB(index.state)).entries("mymodel")
    assert [entry.detail.get("reason") for entry in entries if entry.action == "yank"] == [reason]
    assert [entry.detail.get("note") for entry in entries if entry.action == "promote"][-1] == note
    assert reason in line(next(entry for entry in entries if entry.action == "yank"))
