"""The local index as a real process: auth, overwrite refusal, digests, private reads, start/stop."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, VENV, assert_clean_error, index_env, pipeline, run, upload_form

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


def served_hashes(env, auth=None, project: str = "mymodel") -> dict[str, str]:
    status, page = get(f"http://127.0.0.1:{env['INDEX_PORT']}/simple/{project}/", auth)
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


# A project this index does not own: its uploads are served as they arrive (pypiserver's rule), for the
# tests of what every project gets alike (digests, overwrite refusal); the model package's are sealed.
OTHER = "othermodel"


def fake_wheel(directory: Path, version: str, payload: bytes = b"x", project: str = "mymodel") -> Path:
    path = directory / f"{project}-{version}-py3-none-any.whl"
    path.write_bytes(payload)
    return path


def twine(env, *files: Path, username: str | None = None, password: str | None = None):
    twine_env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    if username is not None:
        twine_env.update(TWINE_USERNAME=username, TWINE_PASSWORD=password or "")
    return run([VENV / "bin" / "twine", "upload", "--non-interactive", "--disable-progress-bar",
                "--repository-url", f"http://127.0.0.1:{env['INDEX_PORT']}/", *files], env=twine_env, check=False)


def real_wheel(directory: Path, version: str, metadata: str = "", tag: str = "py3-none-any",
               project: str = "mymodel") -> Path:
    """A minimal valid wheel (twine checks the metadata); ``metadata``: more METADATA header lines."""
    import zipfile

    path = directory / f"{project}-{version}-{tag}.whl"
    info = f"{project}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{project}/__init__.py", f"__version__ = '{version}'\n")
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n{metadata}")
        wheel.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def real_sdist(directory: Path, version: str) -> Path:
    """A minimal sdist twine accepts (it reads PKG-INFO)."""
    import io
    import tarfile

    path = directory / f"mymodel-{version}.tar.gz"
    info = f"Metadata-Version: 2.1\nName: mymodel\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as sdist:
        for name, content in (("PKG-INFO", info), ("setup.cfg", b"")):
            member = tarfile.TarInfo(f"mymodel-{version}/{name}")
            member.size = len(content)
            sdist.addfile(member, io.BytesIO(content))
    return path


def publish_wheel(env, directory: Path, version: str, metadata: str = "") -> Path:
    """A release of ``mymodel`` as the index serves one: an sdist and a wheel, uploaded, then sealed;
    the wheel (``metadata``: more of its METADATA header lines)."""
    wheel = real_wheel(directory, version, metadata)
    publish(env, version, real_sdist(directory, version), wheel)
    return wheel


def post_form(env, action: str, fields: dict, auth: tuple[str, str] | None) -> tuple[int, dict]:
    """POST ``fields`` to the index's ``+<action>``: the status and the JSON answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/+{action}", method="POST",
                                     data=urllib.parse.urlencode(fields).encode())
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if body.startswith(b"{") else {"body": body.decode(errors="replace")}


def seal(env, version: str, *files: Path, name: str = "mymodel") -> tuple[int, dict]:
    """What a release sends once its files are up: ``POST /+seal`` naming each file with its sha256."""
    named = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    return post_form(env, "seal", {"name": name, "version": version, "files": json.dumps(named)}, credentials(env))


def publish(env, version: str, *files: Path) -> None:
    """Upload ``files`` with twine, then seal them: a release, as the index serves it."""
    uploaded = twine(env, *files, username=credentials(env)[0], password=credentials(env)[1])
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    status, answer = seal(env, version, *files)
    assert status == 200, answer


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
    wheel = real_wheel(tmp_path, "1.0.0+test", project=OTHER)
    # twine will not even try without credentials, so post the upload form by hand.
    anonymous = urllib.request.Request(f"http://127.0.0.1:{index['INDEX_PORT']}/", method="POST",
                                       data=b":action=file_upload&name=mymodel&version=1.0.0%2Btest")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=30)
    assert refused.value.code == 401
    wrong = twine(index, wheel, username="mymodel", password="wrong")
    assert wrong.returncode != 0 and "403" in wrong.stdout + wrong.stderr
    assert served_hashes(index, project=OTHER) == {}
    assert twine(index, wheel, username=credentials(index)[0], password=credentials(index)[1]).returncode == 0
    first = served_hashes(index, project=OTHER)
    assert first == {wheel.name: hashlib.sha256(wheel.read_bytes()).hexdigest()}
    real_wheel(tmp_path, "1.0.0+test", project=OTHER).write_bytes(wheel.read_bytes() + b"changed")
    again = twine(index, wheel, username=credentials(index)[0], password=credentials(index)[1])
    assert again.returncode != 0 and "400" in again.stdout + again.stderr
    assert served_hashes(index, project=OTHER) == first


def largest_open_file(pid: int) -> int:
    """The size of the largest regular file the process holds open (waitress spools a body to a deleted
    temporary file: this sees it where the file system's listing cannot)."""
    sizes = [0]
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            stat = os.stat(fd)
        except OSError:
            continue
        if stat.st_mode & 0o170000 == 0o100000:
            sizes.append(stat.st_size)
    return max(sizes)


def raw_post(env, size: int, authorization: str = "", watch=None, path: str = "/") -> tuple[int, str]:
    """POST ``size`` bytes (streamed from a generator, never held) to ``path`` (the upload route): (bytes the
    server let in before it answered, its status line). ``watch()`` runs after every 16 MB sent."""
    block = b"x" * 2**20

    def body():
        for sent in range(0, size, len(block)):
            if watch and sent % (16 << 20) == 0:
                watch()
            yield block[:min(len(block), size - sent)]

    with socket.create_connection(("127.0.0.1", int(env["INDEX_PORT"])), timeout=30) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: index\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                           f"Content-Length: {size}\r\n{authorization}\r\n".encode())
        sent = 0
        try:
            for chunk in body():
                connection.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: it reads no more
            pass
        answer = connection.recv(4096).decode("latin-1")
    return sent, answer.split("\r\n", 1)[0]


def test_an_anonymous_900_mb_post_is_refused_on_its_headers_and_never_stored(index):
    """Before: waitress spooled up to 1 GiB of an anonymous body to disk, then pypiserver answered 401."""
    pid = json.loads((Path(index["INDEX_STATE"]) / "server.json").read_text())["pid"]
    held = []
    sent, status = raw_post(index, 900 << 20, watch=lambda: held.append(largest_open_file(pid)))
    assert status == "HTTP/1.1 401 Unauthorized"
    assert sent < 100 << 20, sent  # cut off: what a refused client may still send is read and dropped, bounded
    assert max(held) < 1 << 20, held  # nothing of the body was spooled to a file
    reader = json.loads((Path(index["INDEX_STATE"]) / "reader.json").read_text())

    def basic(user: str, password: str) -> str:
        return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() + "\r\n"

    # Refused on the headers too: the read-only credential, a user the index does not have, a wrong password.
    assert raw_post(index, 2 << 20, basic(reader["username"], reader["password"]))[1] == "HTTP/1.1 403 Forbidden"
    assert raw_post(index, 2 << 20, basic("eve", "x"))[1] == "HTTP/1.1 403 Forbidden"
    assert raw_post(index, 2 << 20, basic(credentials(index)[0], "wrong"))[1] == "HTTP/1.1 403 Forbidden"
    # The release's other writes (a seal, a take-back, a promotion) are guarded alike: refused before the body.
    for path in ("/+seal", "/+take-back", "/+promote"):
        sent, status = raw_post(index, 128 << 20, path=path, watch=lambda: held.append(largest_open_file(pid)))
        assert status == "HTTP/1.1 401 Unauthorized" and sent < 100 << 20, (path, sent, status)
        assert raw_post(index, 2 << 20, basic(reader["username"], reader["password"]), path=path)[1] == \
            "HTTP/1.1 403 Forbidden", path
    assert max(held) < 1 << 20, held
    assert get(f"http://127.0.0.1:{index['INDEX_PORT']}/health") == (200, b"Ok")


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
    assert_clean_error(pipeline(REPO, other, "index", check=False), "make index-stop first",
                       f"runs with INDEX_DIR={Path(index['INDEX_DIR']).resolve()}, "
                       f"not the INDEX_DIR={(tmp_path / 'elsewhere').resolve()} asked for")


def post_upload(env, filename: str, content: bytes, auth: tuple[str, str]) -> int:
    """The upload form twine sends, posted by hand; the HTTP status it got."""
    content_type, body = upload_form(filename, content)
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/", data=body, method="POST")
    request.add_header("Content-Type", content_type)
    return status_of(request, auth)


def status_of(request: urllib.request.Request, auth: tuple[str, str]) -> int:
    """The HTTP status the index answers ``request`` sent with ``auth``."""
    request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_concurrent_uploads_of_one_file_name_store_exactly_one(index):
    auth = credentials(index)
    name = f"{OTHER}-1.0.0+race-py3-none-any.whl"
    # Two uploads of 64 MB: checking for the file and writing it are far apart, both got 200 before.
    contents = [bytes([n]) * (64 << 20) for n in range(2)]
    start = threading.Barrier(len(contents))
    assert post_upload(index, f"{OTHER}-0.0.1+warm-py3-none-any.whl", b"warm", auth) == 200  # auth now cached

    def upload(content: bytes) -> int:
        start.wait()
        return post_upload(index, name, content, auth)

    with ThreadPoolExecutor(len(contents)) as pool:
        statuses = list(pool.map(upload, contents))
    assert sorted(statuses) == [200] + [409] * (len(contents) - 1), statuses
    winner = contents[statuses.index(200)]
    stored = Path(index["INDEX_DIR"]) / name
    assert hashlib.sha256(stored.read_bytes()).digest() == hashlib.sha256(winner).digest()
    assert served_hashes(index, project=OTHER)[name] == hashlib.sha256(winner).hexdigest()
    assert get(f"http://127.0.0.1:{index['INDEX_PORT']}/packages/{name}") == (200, winner)
    assert sorted(p.name for p in Path(index["INDEX_DIR"]).iterdir() if "race" in p.name) == [name]  # no partial


def upload_real_wheel(env, directory: Path, version: str) -> Path:
    wheel = real_wheel(directory, version, project=OTHER)
    user, password = credentials(env)
    result = twine(env, wheel, username=user, password=password)
    assert result.returncode == 0, result.stdout + result.stderr
    return wheel


def cache_temporaries(state: Path) -> list[str]:
    return sorted(p.name for p in state.glob(".digests.json.*"))


def test_a_digest_cache_blocked_by_a_directory_never_fails_an_upload(index, tmp_path):
    state = Path(index["INDEX_STATE"])
    (state / "digests.json").unlink(missing_ok=True)
    (state / "digests.json").mkdir()  # the cache file cannot be put in place
    wheel = upload_real_wheel(index, tmp_path, "1.0.0+blocked")
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert served_hashes(index, project=OTHER) == {wheel.name: sha256}
    assert cache_temporaries(state) == []
    assert "cannot write the digest cache" in (state / "server.log").read_text()
    (state / "digests.json").rmdir()
    assert get(f"http://127.0.0.1:{index['INDEX_PORT']}/health")[0] == 200  # kept dirty: written after this one
    cache = json.loads((state / "digests.json").read_text())
    assert [digest for _, digest in cache.values()] == [f"sha256={sha256}"]


def test_a_full_state_folder_refuses_an_upload_it_cannot_record_and_takes_it_once_there_is_room(tmp_path):
    """The digest cache only saves hashing, but the record of a stored version is what keeps its number
    from being used twice (index/numbers.py): an upload the index cannot record is refused, not stored."""
    env = index_env(tmp_path)
    state = Path(env["INDEX_STATE"])
    state.mkdir()
    mounted = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", state], check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        pipeline(REPO, env, "index")
        filler = state / "filler"
        with open(filler, "wb", buffering=0) as handle, pytest.raises(OSError):  # ENOSPC: the folder is full
            while True:
                handle.write(b"\0" * 4096)
        sdist, wheel = real_sdist(tmp_path, "1.0.0+full"), real_wheel(tmp_path, "1.0.0+full")
        refused = twine(env, sdist, username=credentials(env)[0], password=credentials(env)[1])
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "500" in output, output
        assert not list(Path(env["INDEX_DIR"]).iterdir())  # nothing stored, no partial file
        assert cache_temporaries(state) == []
        filler.unlink()
        publish(env, "1.0.0+full", sdist, wheel)
        assert served_hashes(env) == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (sdist, wheel)}
        assert get(f"http://127.0.0.1:{env['INDEX_PORT']}/health")[0] == 200
        cache = json.loads((state / "digests.json").read_text())
        assert sorted(digest for _, digest in cache.values()) == sorted(
            f"sha256={hashlib.sha256(p.read_bytes()).hexdigest()}" for p in (sdist, wheel))
    finally:
        pipeline(REPO, env, "index-stop", check=False)
        run(["umount", state])


@pytest.mark.parametrize("damaged", ["[]", "null", '"text"', '{"x": 5}', "{not json"])
def test_a_damaged_digest_cache_is_rebuilt(tmp_path, damaged):
    env = index_env(tmp_path)
    state = Path(env["INDEX_STATE"])
    state.mkdir()
    (state / "digests.json").write_text(damaged)
    packages = Path(env["INDEX_DIR"])
    packages.mkdir()
    wheel = fake_wheel(packages, "1.0.0+a", b"served", project=OTHER)
    pipeline(REPO, env, "index")
    try:
        assert served_hashes(env, project=OTHER) == {wheel.name: hashlib.sha256(b"served").hexdigest()}
        cache = json.loads((state / "digests.json").read_text())
        assert [digest for _, digest in cache.values()] == [f"sha256={hashlib.sha256(b'served').hexdigest()}"]
    finally:
        pipeline(REPO, env, "index-stop", check=False)


@pytest.mark.parametrize("foreign", ["unrelated", "look-alike"])
def test_a_stale_record_never_gets_another_process_signalled(tmp_path, foreign):
    """After a crash or a reboot the recorded PID can belong to anything: it must survive."""
    env = index_env(tmp_path)
    state = Path(env["INDEX_STATE"])
    state.mkdir()
    if foreign == "unrelated":
        command = ["sleep", "300"]
    else:  # our command line, but not the process that was started: it started at another time
        command = [PYTHON, "-c", "import time; time.sleep(300)", "-m", "index.server", "--port", env["INDEX_PORT"]]
    process = subprocess.Popen(command, start_new_session=True)
    try:
        stale = {"pid": process.pid, "port": int(env["INDEX_PORT"]), "packages_dir": env["INDEX_DIR"], "auth": "update"}
        if foreign == "look-alike":
            stale["started"] = 1
        (state / "server.json").write_text(json.dumps(stale))
        assert "not running" in pipeline(REPO, env, "index-status").stdout
        assert pipeline(REPO, env, "index-stop").stdout.strip() == "index: was not running"
        assert process.poll() is None
        (state / "server.json").write_text(json.dumps(stale))
        assert "running at" in pipeline(REPO, env, "index").stdout
        assert json.loads((state / "server.json").read_text())["pid"] != process.pid
        assert pipeline(REPO, env, "index-stop").stdout.strip() == "index: stopped"
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()
