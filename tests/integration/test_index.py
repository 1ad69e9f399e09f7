"""The local index as a real process: auth, overwrite refusal, digests, private reads, start/stop."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, VENV, assert_clean_error, index_env, pipeline, run

pytestmark = pytest.mark.integration


def credentials(env) -> tuple[str, str]:
    raw = json.loads((Path(env["INDEX_STATE"]) / "credentials.json").read_text())
    return raw["username"], raw["password"]


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def served_hashes(env, auth=None) -> dict[str, str]:
    status, page = get(f"http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel/", auth)
    if status == 404:
        return {}
    assert status == 200, page
    hashes = {}
    for part in page.decode().split('href="')[1:]:
        link = part.split('"', 1)[0]
        name, _, digest = link.rsplit("/", 1)[-1].partition("#sha256=")
        hashes[urllib.request.unquote(name)] = digest
    return hashes


@pytest.fixture()
def index(tmp_path):
    env = index_env(tmp_path)
    pipeline(REPO, env, "index")
    yield env
    pipeline(REPO, env, "index-stop", check=False)


def fake_wheel(directory: Path, version: str, payload: bytes = b"x") -> Path:
    path = directory / f"mymodel-{version}-py3-none-any.whl"
    path.write_bytes(payload)
    return path


def twine(env, *files: Path, username: str | None = None, password: str | None = None):
    twine_env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    if username is not None:
        twine_env.update(TWINE_USERNAME=username, TWINE_PASSWORD=password or "")
    return run([VENV / "bin" / "twine", "upload", "--non-interactive", "--disable-progress-bar",
                "--repository-url", f"http://127.0.0.1:{env['INDEX_PORT']}/", *files], env=twine_env, check=False)


def real_wheel(directory: Path, version: str, metadata: str = "") -> Path:
    """A minimal valid wheel (twine checks the metadata); ``metadata``: more METADATA header lines."""
    import zipfile

    path = directory / f"mymodel-{version}-py3-none-any.whl"
    info = f"mymodel-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mymodel/__init__.py", f"__version__ = '{version}'\n")
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: mymodel\nVersion: {version}\n{metadata}")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def test_health_credentials_and_owner_only_files(index):
    assert get(f"http://127.0.0.1:{index['INDEX_PORT']}/health") == (200, b"Ok")
    state = Path(index["INDEX_STATE"])
    for name in ("credentials.json", "htpasswd"):
        assert (state / name).stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700
    user, password = credentials(index)
    assert len(password) >= 24
    assert password.encode() not in (state / "htpasswd").read_bytes()  # only its bcrypt hash
    status = run([PYTHON, "-m", "pipeline", "index-status"], cwd=REPO, env=index).stdout
    assert "running at" in status and password not in status


def test_uploads_need_the_right_credentials_and_never_overwrite(index, tmp_path):
    wheel = real_wheel(tmp_path, "1.0.0+test")
    # twine will not even try without credentials, so post the upload form by hand.
    anonymous = urllib.request.Request(f"http://127.0.0.1:{index['INDEX_PORT']}/", method="POST",
                                       data=b":action=file_upload&name=mymodel&version=1.0.0%2Btest")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=30)
    assert refused.value.code == 401
    wrong = twine(index, wheel, username="mymodel", password="wrong")
    assert wrong.returncode != 0 and "403" in wrong.stdout + wrong.stderr
    assert served_hashes(index) == {}
    assert twine(index, wheel, username=credentials(index)[0], password=credentials(index)[1]).returncode == 0
    first = served_hashes(index)
    assert first == {wheel.name: hashlib.sha256(wheel.read_bytes()).hexdigest()}
    real_wheel(tmp_path, "1.0.0+test").write_bytes(wheel.read_bytes() + b"changed")
    again = twine(index, wheel, username=credentials(index)[0], password=credentials(index)[1])
    assert again.returncode != 0 and "400" in again.stdout + again.stderr
    assert served_hashes(index) == first


def test_served_hashes_follow_files_replaced_added_and_removed_behind_the_index(index):
    packages = Path(index["INDEX_DIR"])
    a = fake_wheel(packages, "1.0.0+a", b"first")
    assert served_hashes(index) == {a.name: hashlib.sha256(b"first").hexdigest()}
    assert served_hashes(index) == {a.name: hashlib.sha256(b"first").hexdigest()}  # from the cache
    replacement = packages / ".swap"
    replacement.write_bytes(b"second, longer")
    os.replace(replacement, a)                       # replaced atomically: new inode
    assert served_hashes(index)[a.name] == hashlib.sha256(b"second, longer").hexdigest()
    stat = a.stat()
    a.write_bytes(b"third, longer!")                 # rewritten in place, same size
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime (ctime still moves)
    assert served_hashes(index)[a.name] == hashlib.sha256(b"third, longer!").hexdigest()
    b = fake_wheel(packages, "1.0.1+a", b"new file")
    assert served_hashes(index)[b.name] == hashlib.sha256(b"new file").hexdigest()
    a.unlink()
    assert served_hashes(index) == {b.name: hashlib.sha256(b"new file").hexdigest()}
    status, body = get(f"http://127.0.0.1:{index['INDEX_PORT']}/packages/{b.name}")
    assert status == 200 and body == b"new file"


def test_restarted_index_serves_every_file_with_the_same_hashes(index):
    packages = Path(index["INDEX_DIR"])
    for n in range(3):
        fake_wheel(packages, f"1.0.{n}+a", os.urandom(1000))
    before = served_hashes(index)
    pipeline(REPO, index, "index-stop")
    assert "not running" in pipeline(REPO, index, "index-status").stdout
    pipeline(REPO, index, "index")
    assert served_hashes(index) == before and len(before) == 3
    cache = json.loads((Path(index["INDEX_STATE"]) / "digests.json").read_text())
    assert sorted(digest for _, digest in cache.values()) == sorted(f"sha256={d}" for d in before.values())

    # A file replaced while the index was down is hashed again, whatever the cache says.
    pipeline(REPO, index, "index-stop")
    changed = fake_wheel(packages, "1.0.0+a", b"replaced while stopped")
    pipeline(REPO, index, "index")
    assert served_hashes(index) == {**before, changed.name: hashlib.sha256(b"replaced while stopped").hexdigest()}


def test_starting_twice_is_harmless_and_a_taken_port_is_a_clear_error(index, tmp_path):
    first = pipeline(REPO, index, "index").stdout
    assert "running at" in first
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = {**index_env(tmp_path / "other"), "INDEX_PORT": str(squatter.getsockname()[1])}
        assert_clean_error(pipeline(REPO, taken, "index", check=False), "is taken by another program", "INDEX_PORT=")


def test_index_binds_to_loopback_only(index):
    connections = Path("/proc/net/tcp").read_text().splitlines()[1:]
    port = f"{int(index['INDEX_PORT']):04X}"
    listening = [line.split()[1] for line in connections if line.split()[1].endswith(":" + port) and line.split()[3] == "0A"]
    assert listening == ["0100007F:" + port]


def test_private_reads_refuse_anonymous_and_wrong_credentials(tmp_path):
    env = index_env(tmp_path, INDEX_AUTH="read")
    pipeline(REPO, env, "index")
    try:
        fake_wheel(Path(env["INDEX_DIR"]), "1.0.0+a", b"private")
        url = f"http://127.0.0.1:{env['INDEX_PORT']}"
        assert get(f"{url}/simple/mymodel/")[0] == 401
        assert get(f"{url}/packages/mymodel-1.0.0+a-py3-none-any.whl")[0] == 401
        assert get(f"{url}/simple/mymodel/", ("mymodel", "wrong"))[0] == 403
        user, password = credentials(env)
        for _ in range(3):  # repeated requests with the same credentials keep working
            assert served_hashes(env, (user, password)) == {
                "mymodel-1.0.0+a-py3-none-any.whl": hashlib.sha256(b"private").hexdigest()}
            assert get(f"{url}/simple/mymodel/", ("mymodel", "wrong"))[0] == 403
        assert get(f"{url}/packages/mymodel-1.0.0+a-py3-none-any.whl", (user, password)) == (200, b"private")
    finally:
        pipeline(REPO, env, "index-stop", check=False)


def test_a_running_index_for_another_folder_is_not_reused(index, tmp_path):
    other = {**index, "INDEX_DIR": str(tmp_path / "elsewhere")}
    assert_clean_error(pipeline(REPO, other, "index", check=False), "make index-stop first")
