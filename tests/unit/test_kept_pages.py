"""A kept simple page is handed to the server as a file it can send with ``os.sendfile`` (index/simple.py's
KeptPage, index/sendfile.py), from the index's real WSGI app: each request its own file, with its own
offset, holding the whole page, and its length announced (HEAD too)."""

from __future__ import annotations

from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from waitress.buffers import ReadOnlyFileBasedBuffer

from index.sendfile import file_descriptor
from index.server import make_app
from tests.registry_wheels import release_files

JSON = "application/vnd.pypi.simple.v1+json"


def call(app, method: str = "GET", accept: str = "text/html", path: str = "/simple/mymodel/") -> tuple[dict, object]:
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "HTTP_ACCEPT": accept,
               "wsgi.file_wrapper": ReadOnlyFileBasedBuffer}  # waitress's, as the index runs
    setup_testing_defaults(environ)
    started = []
    body = app(environ, lambda line, headers, exc=None: started.append(dict(headers)))
    return started[0], body


@pytest.fixture()
def app(tmp_path):
    for number in range(30):
        release_files(tmp_path / "packages", f"1.0.{number}+titanic", {"LogReg": 0.8})
    (tmp_path / "htpasswd").write_text("")
    return make_app(tmp_path / "packages", tmp_path / "htpasswd")


@pytest.mark.parametrize("accept", ["text/html", JSON])
def test_a_kept_page_is_a_file_per_request_that_sendfile_can_send(app, accept):
    call(app, accept=accept)  # rendered and kept
    (headers, one), (_, two) = call(app, accept=accept), call(app, accept=accept)
    assert type(one) is ReadOnlyFileBasedBuffer and file_descriptor(one) is not None  # before: a list of bytes
    assert file_descriptor(one) != file_descriptor(two)
    size = one.prepare()
    assert size == two.prepare() == int(headers["Content-Length"]) > 10_000
    head = one.get(100, skip=True)  # the channel reads on from where it sent: the other request does not move
    page = two.get(-1)
    assert head + one.get(-1) == page and page.count(b"1.0.29+titanic") >= 2
    one.close(), two.close()
    head_headers, body = call(app, method="HEAD", accept=accept)
    assert list(body) == [] and head_headers["Content-Length"] == str(size)




def test_without_an_in_memory_file_the_page_goes_out_as_bytes_the_same(app, tmp_path, monkeypatch):
    _, kept = call(app)
    expected = (kept.prepare(), kept.get(-1))[1]
    kept.close()

    def unavailable(*args):
        raise OSError("no memfd here")

    monkeypatch.setattr("os.memfd_create", unavailable)
    plain = make_app(tmp_path / "packages", tmp_path / "htpasswd")
    for _ in range(2):  # rendered, then kept
        headers, body = call(plain)
        assert file_descriptor(body) is None and int(headers["Content-Length"]) == body.prepare() == len(expected)
        assert body.get(-1) == expected
