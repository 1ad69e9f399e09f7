"""A download finds its file in a map kept per change (index/simple.py's ``served``), not by listing the
folder: the index's real WSGI app over a real folder, with the kernel's folder watch and without it
(the signatures of index/pagecache.py), shows each change on the very next request."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from wsgiref.util import setup_testing_defaults

import pytest

from index import simple
from index.pagecache import PageCache
from tests.registry_wheels import release_files
from tests.unit.test_channel_views import UPLOADER, Index

OLD, NEW, STAGED = "1.1.1+titanic", "1.1.2+titanic", "1.1.3+titanic"
WINDOW_NS = 50_000_000  # the signatures' racy window, shortened: what changed within it is not kept


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    built = tmp_path_factory.mktemp("built")
    return {version: release_files(built, version, {"LogisticRegression": 0.8}) for version in (OLD, NEW, STAGED)}


@pytest.fixture(params=["inotify", "signatures"])
def index(request, tmp_path, monkeypatch, releases):
    if request.param == "signatures":  # as where inotify is missing or its watches are used up
        monkeypatch.setattr(simple.FolderWatch, "open", classmethod(lambda cls: None))
    monkeypatch.setattr(simple, "PageCache", functools.partial(PageCache, racy_window_ns=WINDOW_NS))
    built = Index(tmp_path)
    for version in (OLD, NEW):
        for path in releases[version]:
            built.upload(path)
        seal(built, version, *releases[version])
    return built


def seal(index: Index, version: str, *files) -> None:
    named = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    status, _, body = index.call("POST", "/+seal", form={"name": "mymodel", "version": version,
                                                         "files": json.dumps(named)}, auth=UPLOADER)
    assert status == 200, body


def download(index: Index, name: str) -> tuple[int, bytes]:
    environ = {"PATH_INFO": f"/packages/{name}", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    started = []
    body = b"".join(index.app(environ, lambda line, headers, exc=None: started.append(line)))
    return int(started[0].split()[0]), body


def wheel_name(version: str) -> str:
    return f"mymodel-{version}-py3-none-any.whl"


def test_downloads_after_the_first_list_the_folder_no_more(index):
    backend = index.app._pypiserver_config.backend.backend  # under _ForgettingPages
    listings = []
    listed = backend.listed
    backend.listed = lambda: listings.append(1) or listed()
    time.sleep(WINDOW_NS * 2 / 1e9)  # the files are older than the racy window: a listing of them is kept
    for _ in range(20):
        assert download(index, wheel_name(OLD))[0] == 200
        assert index.get(f"/packages/{wheel_name(NEW)}.metadata")[0] == 200
    assert len(listings) <= 1, f"{len(listings)} listings of the folder for 40 requests"
    assert download(index, "mymodel-9.9.9-py3-none-any.whl")[0] == 404


def test_a_file_uploaded_or_removed_through_the_index_is_seen_at_once(index, releases):
    assert download(index, wheel_name(OLD))[0] == 200  # the map is made
    wheel, sdist = releases[STAGED]
    index.upload(wheel)
    index.upload(sdist)
    assert download(index, wheel.name)[0] == 404  # uploaded, not sealed: served nowhere
    seal(index, STAGED, wheel, sdist)
    assert download(index, wheel.name) == (200, wheel.read_bytes())
    backend = index.app._pypiserver_config.backend
    for pkg in [p for p in backend.get_all_packages() if p.relfn_unix == wheel_name(OLD)]:
        backend.remove_package(pkg)
    assert download(index, wheel_name(OLD))[0] == 404


def test_a_file_placed_or_deleted_by_hand_is_seen_at_once(index, tmp_path):
    assert download(index, wheel_name(OLD))[0] == 200
    other = tmp_path / "other-2.0-py3-none-any.whl"
    other.write_bytes(b"not really a wheel")
    shutil.copy(other, index.packages / other.name)  # a file put there by hand is served, as pypiserver does
    assert download(index, other.name) == (200, b"not really a wheel")
    (index.packages / other.name).unlink()
    assert download(index, other.name)[0] == 404
    (index.packages / "sub").mkdir()
    shutil.copy(other, index.packages / "sub" / other.name)
    assert download(index, f"sub/{other.name}")[0] == 200
