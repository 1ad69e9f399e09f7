"""Channels as index views, from the index's real WSGI app over a folder of wheels (no server
process): promotions recorded through ``POST /+promote`` as the upload credential, and the
view ``/channels/<channel>/simple/`` serving only the promoted version of the model package
and of its siblings, in HTML and PEP 691 JSON."""

from __future__ import annotations

import base64
import io
import json
import shutil
import urllib.parse
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from passlib.apache import HtpasswdFile

from index.channels import CHANNELS_FOLDER, ChannelStore
from index.server import make_app
from index.yanks import YANKS_FILE, YankStore
from tests.registry_wheels import release_files

JSON = "application/vnd.pypi.simple.v1+json"
UPLOADER, READER = ("mymodel", "upload-secret"), ("mymodel-reader", "read-secret")
OLD, NEW = "1.1.1+titanic", "1.1.2+titanic"


class Index:
    def __init__(self, tmp: Path) -> None:
        self.packages, self.state = tmp / "packages", tmp / "state"
        self.packages.mkdir()
        htpasswd = HtpasswdFile(str(tmp / "htpasswd"), new=True, default_scheme="sha256_crypt")
        for user, password in (UPLOADER, READER):
            htpasswd.set_password(user, password)
        htpasswd.save()
        self.app = make_app(self.packages, tmp / "htpasswd", state_dir=self.state)

    def call(self, method: str, path: str, accept: str = "text/html", form: dict | None = None,
             auth: tuple[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode(form or {}).encode()
        environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "HTTP_ACCEPT": accept,
                   "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body)}
        if auth:
            environ["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        setup_testing_defaults(environ)
        started = []
        answer = b"".join(self.app(environ, lambda line, headers, exc=None: started.append((line, headers))))
        return int(started[0][0].split()[0]), dict(started[0][1]), answer.decode("utf-8", errors="replace")

    def get(self, path: str, accept: str = "text/html") -> tuple[int, str]:
        status, _, body = self.call("GET", path, accept)
        return status, body

    def promote(self, channel: str, version: str, auth: tuple[str, str] = UPLOADER) -> tuple[int, dict]:
        status, _, body = self.call("POST", "/+promote", form={"channel": channel, "name": "mymodel",
                                                              "version": version, "commit": "abc123", "by": "ann"},
                                    auth=auth)
        return status, json.loads(body) if body.startswith("{") else {"body": body}


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
    # the main index still serves every version; other projects are the main index's pages
    assert filenames(index.get("/simple/mymodel/", JSON)[1]) == [
        f"mymodel-{OLD}-py3-none-any.whl", f"mymodel-{OLD}.tar.gz", f"mymodel-{NEW}-py3-none-any.whl",
        f"mymodel-{NEW}.tar.gz"]
    assert index.get("/channels/prod/simple/otherlib/", JSON)[1] == index.get("/simple/otherlib/", JSON)[1]
    # the data package a model pins stays installable through the channel: every version, as on /simple/
    assert filenames(index.get("/channels/prod/simple/mymodel-data/", JSON)[1]) == [
        "mymodel_data-1.0.0+titanic-py3-none-any.whl"]
    history = json.loads(index.get("/channels/")[1])["channels"]["prod"]
    assert [(p["number"], p["version"], p["by"], p["commit"]) for p in history] == [
        (1, OLD, "ann", "abc123"), (2, NEW, "ann", "abc123"), (3, OLD, "ann", "abc123")]


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


def test_promotion_refuses_the_reader_a_bad_channel_an_unpublished_or_a_yanked_version(index):
    assert index.promote("prod", OLD, auth=READER)[0] == 403
    assert index.promote("prod", OLD, auth=("mymodel", "wrong"))[0] == 403
    assert index.call("POST", "/+promote", form={"channel": "prod", "name": "mymodel", "version": OLD})[0] == 401
    status, answer = index.promote("Prod_EU", OLD)
    assert status == 400 and "lowercase letters" in answer["error"]
    status, answer = index.promote("prod", "9.9.9+titanic")
    assert status == 404 and answer["versions"] == [OLD, NEW]
    YankStore(index.state / YANKS_FILE).set("mymodel", NEW, "bad split")
    status, answer = index.promote("prod", NEW)
    assert status == 409 and "yanked (bad split)" in answer["error"]
    status, _, body = index.call("POST", "/+promote", form={"channel": "prod", "name": "otherlib", "version": "2.0.0"},
                                 auth=UPLOADER)
    assert status == 400 and "serve mymodel" in body
    assert not (index.state / CHANNELS_FOLDER / "prod.jsonl").exists()
    assert json.loads(index.get("/channels/")[1]) == {"channels": {}}


def test_a_damaged_history_is_an_error_not_another_version(index):
    index.promote("prod", NEW)
    (index.state / CHANNELS_FOLDER / "prod.jsonl").write_text("{not json\n")
    status, body = index.get("/channels/prod/simple/mymodel/", JSON)
    assert status == 500 and "damaged" in body
    assert index.promote("prod", OLD)[0] == 500
    assert (index.state / CHANNELS_FOLDER / "prod.jsonl").read_text() == "{not json\n"


def test_the_history_only_grows_and_is_replaced_whole(tmp_path):
    store = ChannelStore(tmp_path)
    first = store.promote("prod", OLD, "2026-01-01T00:00:00Z", "mymodel", "ann\n<b>", "abc")
    written = (tmp_path / "prod.jsonl").read_bytes()
    store.promote("prod", NEW, "2026-01-02T00:00:00Z", "mymodel", "bob", "def")
    assert (tmp_path / "prod.jsonl").read_bytes().startswith(written)
    assert first.by == "ann <b>" and [p.version for p in store.history("prod")] == [OLD, NEW]
    assert store.current("prod").number == 2 and store.history("staging") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "prod.jsonl"]  # no temporary file left


def test_concurrent_promotions_get_one_number_each(tmp_path):
    import threading

    stores = [ChannelStore(tmp_path) for _ in range(4)]  # as gunicorn workers: one store each, one folder
    threads = [threading.Thread(target=lambda n=n: stores[n % 4].promote("prod", f"1.1.{n}", "now", "mymodel", "ci", "c"))
               for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = ChannelStore(tmp_path).history("prod")
    assert [p.number for p in history] == list(range(1, 21))
    assert sorted(p.version for p in history) == sorted(f"1.1.{n}" for n in range(20))


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
                                              "commit": "abc123", "by": hostile}, auth=UPLOADER)
    page = index.get("/registry/mymodel/")[1]  # "/" lists the two model packages here
    section = page.split("<h2>Channels</h2>", 1)[1].split("<h2>", 1)[0]
    assert f"<h3>prod: {OLD}</h3>" in section
    assert "--index-url http://127.0.0.1/channels/prod/simple/ mymodel" in section
    assert [n[0] for n in section.split('data-number="')[1:]] == ["2", "1"] and "<script>" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (mymodel)" in section
    assert "<h2>Channels</h2>" not in index.get("/registry/otherlib/")[1]
