"""An upload through the index's real WSGI app (no server process) reads its bytes once: the backend
hashes them while it writes the file, and the audit log, the digest cache and the seal take that digest
instead of reading the stored file or the received body again (before: each was read three times)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from passlib.apache import HtpasswdFile

from index.audit import AuditLog
from index.server import make_app
from index.statedb import StateDB
from tests.helpers import upload_form

ADMIN = ("mymodel", "admin-secret")
PAYLOAD = 16 * 2**20  # random bytes, stored: the wheel is as big on disk as on the wire


def wheel(folder: Path, version: str, name: str = "mymodel") -> Path:
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{name}/model.bin", os.urandom(PAYLOAD))
        archive.writestr(f"{name}-{version}.dist-info/METADATA",
                         f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return path


def post(app, form: tuple[str, bytes]) -> str:
    content_type, body = form
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "CONTENT_TYPE": content_type,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}
    setup_testing_defaults(environ)
    started = []
    b"".join(app(environ, lambda line, headers, exc=None: started.append(line)))
    return started[0]


def bytes_read() -> int:
    """What this process has read with read(2) and the like, from files and pipes alike (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture()
def index(tmp_path):
    htpasswd = HtpasswdFile(str(tmp_path / "htpasswd"), new=True, default_scheme="sha256_crypt")
    htpasswd.set_password(*ADMIN)
    htpasswd.save()
    state = tmp_path / "state"
    return make_app(tmp_path / "packages", tmp_path / "htpasswd", state_dir=state), tmp_path / "packages", state


def test_an_upload_is_read_once_and_audited_with_the_stored_files_sha256(index, tmp_path):
    app, packages, state = index
    warm, measured = wheel(tmp_path, "1.0.0+titanic"), wheel(tmp_path, "1.0.1+titanic")
    assert post(app, upload_form(warm.name, warm.read_bytes())).startswith("200")  # imports, the credential
    form = upload_form(measured.name, measured.read_bytes())  # check, the state folder: paid once
    before = bytes_read()
    assert post(app, form).startswith("200")
    read = bytes_read() - before
    size = measured.stat().st_size
    # bottle spools the body and splits the form (one read of the body), the backend copies the file part
    # into the folder, hashing as it writes (one read); nothing reads the stored file or the part again.
    # Before, the stored file was hashed after it was placed and the part again for the audit entry: 4x.
    assert 2 * size < read < 2.25 * size, f"read {read / size:.2f}x the file's {size:,} bytes"

    stored = packages / measured.name
    entry = AuditLog(StateDB(state)).entries("mymodel")[-1]
    assert (entry.action, entry.detail["file"]) == ("upload", measured.name)
    assert entry.detail["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert entry.detail["sha256"] == hashlib.sha256(measured.read_bytes()).hexdigest()


def test_the_digest_kept_at_upload_serves_the_page_and_a_file_changed_since_is_hashed_again(index, tmp_path):
    app, packages, _ = index
    uploaded = wheel(tmp_path, "1.0.0", "otherlib")  # not the index's own: served as it arrives, no seal
    assert post(app, upload_form(uploaded.name, uploaded.read_bytes())).startswith("200")
    backend = app._pypiserver_config.backend.backend  # ours, behind the proxy that drops kept pages
    stored = packages / uploaded.name
    expected = hashlib.sha256(uploaded.read_bytes()).hexdigest()
    before = bytes_read()
    assert backend.stored_sha256(uploaded.name) == expected
    environ = {"PATH_INFO": "/simple/otherlib/", "REQUEST_METHOD": "GET",
               "HTTP_ACCEPT": "application/vnd.pypi.simple.v1+json"}
    setup_testing_defaults(environ)
    page = json.loads(b"".join(app(environ, lambda *args: None)))
    assert page["files"][0]["hashes"]["sha256"] == expected
    assert bytes_read() - before < PAYLOAD / 4  # the wheel's METADATA, not its bytes

    stored.write_bytes(b"rewritten in place")  # same inode, another size and mtime: the kept digest no longer holds
    assert backend.stored_sha256(uploaded.name) == hashlib.sha256(b"rewritten in place").hexdigest()
