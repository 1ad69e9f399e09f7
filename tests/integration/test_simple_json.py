"""PEP 691 JSON pages on the real index: chosen by the Accept header, with PEP 700's
keys, the yank (PEP 592) and the core metadata (PEP 714) of each file."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.parse
import urllib.request

import pytest

from tests.helpers import REPO, index_env, pipeline
from tests.integration.test_index import credentials, get, index, publish_wheel, real_sdist  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


def fetch(url: str, accept: str | None = None, auth: tuple[str, str] | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def post_yank(env, version: str, reason: str) -> None:
    form = urllib.parse.urlencode({"name": "mymodel", "version": version, "reason": reason}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/+yank", data=form)
    request.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials(env)).encode()).decode())
    urllib.request.urlopen(request, timeout=30).close()


def test_the_project_page_answers_pep_691_json_when_preferred(index, tmp_path):
    old = publish_wheel(index, tmp_path, "1.0.0")
    new = publish_wheel(index, tmp_path, "1.1.0", "Requires-Python: >=3.11\n")
    post_yank(index, "1.1.0", "bad")
    page_url = f"http://127.0.0.1:{index['INDEX_PORT']}/simple/mymodel/"

    status, content_type, body = fetch(page_url, PIP_ACCEPT)
    assert (status, content_type) == (200, "application/vnd.pypi.simple.v1+json")
    page = json.loads(body)
    assert page["meta"] == {"api-version": "1.1"} and page["name"] == "mymodel"
    assert page["versions"] == ["1.0.0", "1.1.0"]
    files = {f["filename"]: f for f in page["files"]}
    assert sorted(files) == sorted([old.name, new.name, real_sdist(tmp_path, "1.0.0").name,
                                    real_sdist(tmp_path, "1.1.0").name])
    for wheel in (old, new):
        served = files[wheel.name]
        assert served["hashes"] == {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
        assert served["size"] == wheel.stat().st_size
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", served["upload-time"])
        status, _, metadata = fetch(urllib.parse.urljoin(page_url, served["url"]) + ".metadata")
        assert status == 200
        assert served["core-metadata"] == served["dist-info-metadata"] == {"sha256": hashlib.sha256(metadata).hexdigest()}
        status, _, content = fetch(urllib.parse.urljoin(page_url, served["url"]))
        assert (status, content) == (200, wheel.read_bytes())
    assert files[new.name]["yanked"] == "bad" and files[old.name]["yanked"] is False
    assert files[new.name]["requires-python"] == ">=3.11" and "requires-python" not in files[old.name]

    status, content_type, html = fetch(page_url)  # no Accept header: HTML, as before
    assert status == 200 and content_type.startswith("text/html")
    assert html.count(b"data-core-metadata=") == 2 and b'data-yanked="bad"' in html

    status, content_type, body = fetch(f"http://127.0.0.1:{index['INDEX_PORT']}/simple/", PIP_ACCEPT)
    assert (status, content_type) == (200, "application/vnd.pypi.simple.v1+json")
    assert json.loads(body) == {"meta": {"api-version": "1.1"}, "projects": [{"name": "mymodel"}]}
    assert b'href="mymodel/"' in fetch(f"http://127.0.0.1:{index['INDEX_PORT']}/simple/")[2]


def test_private_reads_protect_the_json_pages(tmp_path):
    env = index_env(tmp_path, INDEX_AUTH="read")
    pipeline(REPO, env, "index")
    try:
        auth = credentials(env)
        publish_wheel(env, tmp_path, "1.0.0")
        for url in (f"http://127.0.0.1:{env['INDEX_PORT']}/simple/", f"http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel/"):
            assert fetch(url, PIP_ACCEPT)[0] == 401
            assert fetch(url, PIP_ACCEPT, ("mymodel", "wrong"))[0] == 403
            status, content_type, _ = fetch(url, PIP_ACCEPT, auth)
            assert (status, content_type) == (200, "application/vnd.pypi.simple.v1+json")
    finally:
        pipeline(REPO, env, "index-stop", check=False)
