"""/simple/mymodel/ from the page cache on a real index: every change shows on the next request.

Each step first lets the files age past the cache's racy window, so the page before
the change was served from memory, not rendered for that request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from index.pagecache import RACY_WINDOW_NS
from tests.integration.test_index import (credentials, fake_wheel, get, index, post_form, post_upload,  # noqa: F401
                                          served_hashes)

pytestmark = pytest.mark.integration


def settle() -> None:
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.2)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_page(env) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def yank(env, version: str, reason: str) -> None:
    form = urllib.parse.urlencode({"name": "mymodel", "version": version, "reason": reason}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/+yank", data=form, method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials(env)).encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_files_changed_by_hand_an_upload_and_a_yank_show_on_the_next_request(index):
    packages = Path(index["INDEX_DIR"])
    a = fake_wheel(packages, "1.0.0+a", b"first")
    settle()
    for _ in range(2):  # rendered, then from memory
        assert served_hashes(index) == {a.name: sha(b"first")}
        assert [f["filename"] for f in json_page(index)["files"]] == [a.name]
    b = fake_wheel(packages, "1.0.1+a", b"added by hand")
    assert served_hashes(index) == {a.name: sha(b"first"), b.name: sha(b"added by hand")}
    assert [f["filename"] for f in json_page(index)["files"]] == [a.name, b.name]
    settle()
    served_hashes(index), json_page(index)
    stat = a.stat()
    a.write_bytes(b"third")  # replaced in place: same size, old mtime (the ctime moves)
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert served_hashes(index)[a.name] == sha(b"third")
    assert json_page(index)["files"][0]["hashes"] == {"sha256": sha(b"third")}
    settle()
    served_hashes(index), json_page(index)
    a.unlink()
    assert served_hashes(index) == {b.name: sha(b"added by hand")}
    assert [f["filename"] for f in json_page(index)["files"]] == [b.name]
    settle()
    served_hashes(index), json_page(index)
    uploaded, sdist = "mymodel-1.0.2+a-py3-none-any.whl", "mymodel-1.0.2+a.tar.gz"
    for name, content in ((sdist, b"its sdist"), (uploaded, b"uploaded")):
        assert post_upload(index, name, content, credentials(index)) == 200
    assert uploaded not in served_hashes(index)  # staged: served once sealed
    sealed(index, "1.0.2+a", {sdist: sha(b"its sdist"), uploaded: sha(b"uploaded")})
    assert served_hashes(index)[uploaded] == sha(b"uploaded")
    assert json_page(index)["versions"] == ["1.0.1+a", "1.0.2+a"]
    settle()
    served_hashes(index), json_page(index)
    yank(index, "1.0.1+a", "broken")
    status, html_page = get(f"http://127.0.0.1:{index['INDEX_PORT']}/simple/mymodel/")
    assert status == 200 and html_page.count(b'data-yanked="broken"') == 1
    assert [f.get("yanked") for f in json_page(index)["files"]] == ["broken", False, False]


def sealed(env, version: str, files: dict[str, str]) -> None:
    status, answer = post_form(env, "seal", {"name": "mymodel", "version": version, "files": json.dumps(files)},
                               credentials(env))
    assert status == 200, answer


def test_concurrent_reads_during_a_release_see_the_page_before_or_after_never_between(index):
    """Its sdist, then a 32 MB wheel, then its seal while pages are read in a loop: a reader sees the
    release whole or not at all, never one file of it."""
    packages = Path(index["INDEX_DIR"])
    first = fake_wheel(packages, "1.0.0+a", b"first")
    settle()
    served_hashes(index)
    before = {first.name: sha(first.read_bytes())}
    name, content = "mymodel-1.0.1+a-py3-none-any.whl", os.urandom(32 << 20)
    sdist = "mymodel-1.0.1+a.tar.gz"
    after = {**before, name: sha(content), sdist: sha(b"its sdist")}
    done = threading.Event()

    def read_pages() -> list[dict[str, str]]:
        seen = []
        while not done.is_set():
            seen.append(served_hashes(index))
        return seen

    with ThreadPoolExecutor(3) as pool:
        readers = [pool.submit(read_pages) for _ in range(2)]
        assert post_upload(index, sdist, b"its sdist", credentials(index)) == 200
        assert post_upload(index, name, content, credentials(index)) == 200
        sealed(index, "1.0.1+a", {sdist: sha(b"its sdist"), name: sha(content)})
        assert served_hashes(index) == after  # at once, on the first request after the seal
        done.set()
        seen = [page for reader in readers for page in reader.result()]
    assert seen and all(page in (before, after) for page in seen), ([p for p in seen if p not in (before, after)], after)
