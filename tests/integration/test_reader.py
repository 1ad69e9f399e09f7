"""Two credentials on the real index: the consumers' reader reads, only the uploader changes anything.

The state folder starts as a clone made before the reader existed (one user): starting
the index upgrades it in place and the upload password keeps working."""

from __future__ import annotations

import json
import stat
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from passlib.apache import HtpasswdFile

from tests.helpers import REPO, index_env, pipeline
from tests.integration.test_index import get, post_upload, publish, real_sdist, real_wheel, status_of
from tests.integration.test_simple_json import PIP_ACCEPT, fetch

pytestmark = pytest.mark.integration

OLD_PASSWORD = "upload-password-of-an-existing-clone"


def one_user_state(state: Path) -> None:
    """credentials.json and htpasswd as the index wrote them before it had a reader."""
    state.mkdir(mode=0o700, parents=True)
    htpasswd = HtpasswdFile(default_scheme="bcrypt")
    htpasswd.set_password("mymodel", OLD_PASSWORD)
    (state / "htpasswd").write_bytes(htpasswd.to_string())
    (state / "credentials.json").write_text(json.dumps({"username": "mymodel", "password": OLD_PASSWORD}))
    for name in ("htpasswd", "credentials.json"):
        (state / name).chmod(0o600)


def post_form(env, path: str, fields: dict[str, str], auth: tuple[str, str]) -> int:
    return status_of(urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}{path}", method="POST",
                                            data=urllib.parse.urlencode(fields).encode()), auth)


@pytest.mark.parametrize("mode", ["read", "update"])
def test_the_reader_reads_everything_and_changes_nothing_the_uploader_still_can(tmp_path, mode):
    env = index_env(tmp_path, INDEX_AUTH=mode)
    state = Path(env["INDEX_STATE"])
    one_user_state(state)
    started = pipeline(REPO, env, "index").stdout
    try:
        assert f"{state}/reader.json" in started
        assert stat.S_IMODE((state / "reader.json").stat().st_mode) == 0o600
        reader_file = json.loads((state / "reader.json").read_text())
        reader = (reader_file["username"], reader_file["password"])
        uploader = ("mymodel", OLD_PASSWORD)  # upgraded in place: the upload password still works
        assert json.loads((state / "credentials.json").read_text())["password"] == OLD_PASSWORD
        assert reader[0] == "mymodel-reader" and len(reader[1]) >= 24 and reader[1] not in started
        wheel = real_wheel(tmp_path, "1.0.0+a", "Requires-Python: >=3.9\n")
        sdist = real_sdist(tmp_path, "1.0.0+a")
        publish(env, "1.0.0+a", sdist, wheel)  # as the uploader: credentials.json

        url = f"http://127.0.0.1:{env['INDEX_PORT']}"
        for path in ("/simple/", "/simple/mymodel/", f"/packages/{wheel.name}", f"/packages/{wheel.name}.metadata",
                     "/"):
            assert get(url + path, reader)[0] == 200, path
            if mode == "read":
                assert get(url + path)[0] == 401, path
        for path in ("/simple/", "/simple/mymodel/"):
            status, content_type, _ = fetch(url + path, PIP_ACCEPT, reader)
            assert (status, content_type) == (200, "application/vnd.pypi.simple.v1+json"), path

        version = {"name": "mymodel", "version": "1.0.0+a"}
        changes = {"upload": lambda auth: post_upload(env, "mymodel-1.0.1+a-py3-none-any.whl", b"x", auth),
                   "yank": lambda auth: post_form(env, "/+yank", {**version, "reason": "bad"}, auth),
                   "unyank": lambda auth: post_form(env, "/+unyank", version, auth),
                   "remove": lambda auth: post_form(env, "/", {":action": "remove_pkg", **version}, auth)}
        for name, change in changes.items():
            assert change(reader) == 403, name
        assert sorted(p.name for p in Path(env["INDEX_DIR"]).iterdir()) == sorted([sdist.name, wheel.name])
        for name, change in changes.items():
            assert change(uploader) == 200, name
        assert sorted(p.name for p in Path(env["INDEX_DIR"]).iterdir()) == ["mymodel-1.0.1+a-py3-none-any.whl"]
    finally:
        pipeline(REPO, env, "index-stop", check=False)

