"""Files served the fast way (os.sendfile, index/sendfile.py) keep every rule the index enforces.

A real index with private reads (``make index INDEX_AUTH=read``'s process) holds three versions of
mymodel, each uploaded with real twine: 1.0.0+a sealed and promoted to channel ``prod``, 1.0.1+a sealed
only, 1.0.2+a uploaded and never sealed (a release in progress). Whether a download went out through
``os.sendfile`` is read from the kernel: ``/proc/<pid>/io``'s ``wchar`` counts the bytes a process
sends with sendfile, and not what it sends with ``socket.send`` (the copy through Python it replaces).

Owned names (issue 32, another branch): a name another team owns is refused by the application
before the body, like every refusal here; its test belongs in this file, with
``assert_sent_by_sendfile`` and ``assert_refused_without_bytes``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, consumer_env, index_env, pipeline, run
from tests.integration.test_index import credentials, get, post_form, real_sdist, seal, twine

pytestmark = pytest.mark.integration

PAYLOAD = 6 * 2**20  # well above what a request's other writes (a log line, the digest cache) could add up to


def wheel_of(directory: Path, version: str) -> Path:
    """A valid wheel of mymodel with several MB of random bytes in it (stored, so the file is that big)."""
    path = directory / f"mymodel-{version}-py3-none-any.whl"
    info = f"mymodel-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mymodel/__init__.py", f"__version__ = '{version}'\n")
        wheel.writestr("mymodel/blob.bin", os.urandom(PAYLOAD))
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: mymodel\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture(scope="module")
def private_index(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet-path")
    env = index_env(tmp, INDEX_AUTH="read")
    pipeline(REPO, env, "index")
    try:
        user, password = credentials(env)
        files = {}
        for version in ("1.0.0+a", "1.0.1+a", "1.0.2+a"):
            files[version] = (real_sdist(tmp, version), wheel_of(tmp, version))
            uploaded = twine(env, *files[version], username=user, password=password)
            assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        for version in ("1.0.0+a", "1.0.1+a"):
            status, answer = seal(env, version, *files[version])
            assert status == 200, answer
        status, answer = post_form(env, "promote", {"channel": "prod", "name": "mymodel", "version": "1.0.0+a"},
                                   (user, password))
        assert status == 200, answer
        reader = json.loads((Path(env["INDEX_STATE"]) / "reader.json").read_text())
        yield env, files, (reader["username"], reader["password"])
    finally:
        pipeline(REPO, env, "index-stop", check=False)


def server_pid(env) -> int:
    return json.loads((Path(env["INDEX_STATE"]) / "server.json").read_text())["pid"]


def sent_by_sendfile(pid: int) -> int:
    """Bytes the process wrote through the VFS so far: sendfile counts, socket.send does not."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["wchar"])


def url(env, path: str) -> str:
    return f"http://127.0.0.1:{env['INDEX_PORT']}/{path}"


def assert_sent_by_sendfile(env, path: str, auth, expected: Path) -> None:
    pid = server_pid(env)
    before = sent_by_sendfile(pid)
    status, body = get(url(env, path), auth)
    assert status == 200, body[:300]
    assert hashlib.sha256(body).digest() == hashlib.sha256(expected.read_bytes()).digest()
    assert sent_by_sendfile(pid) - before >= expected.stat().st_size, "the file did not go out with os.sendfile"


def assert_refused_without_bytes(env, path: str, auth, status: int, says: str = "") -> None:
    pid = server_pid(env)
    before = sent_by_sendfile(pid)
    answered, body = get(url(env, path), auth)
    assert answered == status, body[:300]
    assert says in body.decode(errors="replace")
    assert len(body) < 10_000 and sent_by_sendfile(pid) - before < PAYLOAD


def test_private_reads_are_checked_before_a_file_goes_out_with_sendfile(private_index):
    env, files, reader = private_index
    wheel = files["1.0.0+a"][1]
    path = f"packages/{wheel.name}"
    assert_refused_without_bytes(env, path, None, 401)
    assert_refused_without_bytes(env, path, (reader[0], "wrong"), 403)
    assert_sent_by_sendfile(env, path, reader, wheel)  # the consumers' read-only credential
    assert_sent_by_sendfile(env, path, credentials(env), wheel)
    assert_sent_by_sendfile(env, f"packages/{files['1.0.0+a'][0].name}", reader, files["1.0.0+a"][0])


def test_a_channel_view_sends_only_the_promoted_files(private_index):
    env, files, reader = private_index
    promoted, other = files["1.0.0+a"][1], files["1.0.1+a"][1]
    assert_sent_by_sendfile(env, f"channels/prod/packages/{promoted.name}", reader, promoted)
    assert_refused_without_bytes(env, f"channels/prod/packages/{other.name}", reader, 404,
                                 f"{other.name} is not in channel prod")
    assert_refused_without_bytes(env, f"channels/prod/packages/{promoted.name}", None, 401)
    assert_sent_by_sendfile(env, f"packages/{other.name}", reader, other)  # sealed: the main index serves it


def test_an_unsealed_version_is_sent_by_no_path_until_its_release_seals_it(private_index):
    env, files, reader = private_index
    sdist, wheel = files["1.0.2+a"]
    for path in (f"packages/{wheel.name}", f"packages/{sdist.name}", f"channels/prod/packages/{wheel.name}",
                 f"packages/{wheel.name}.metadata"):
        assert_refused_without_bytes(env, path, reader, 404)
    status, answer = seal(env, "1.0.2+a", sdist, wheel)
    assert status == 200, answer
    assert_sent_by_sendfile(env, f"packages/{wheel.name}", reader, wheel)
    assert_refused_without_bytes(env, f"channels/prod/packages/{wheel.name}", reader, 404, "is not in channel prod")


def test_pip_downloads_from_the_private_index_the_fast_way_with_the_hash_checked(private_index, tmp_path):
    env, files, reader = private_index
    wheel = files["1.0.0+a"][1]
    pid = server_pid(env)
    before = sent_by_sendfile(pid)
    index = f"http://{reader[0]}:{reader[1]}@127.0.0.1:{env['INDEX_PORT']}/channels/prod/simple/"
    run([PYTHON, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--quiet",
         "--index-url", index, "-d", tmp_path, "mymodel"], env=consumer_env())
    assert (tmp_path / wheel.name).read_bytes() == wheel.read_bytes()  # pip checked the page's sha256 too
    assert sent_by_sendfile(pid) - before >= wheel.stat().st_size


def test_a_range_request_is_answered_by_the_copy_path_with_the_right_bytes(private_index):
    """bottle answers a Range with a generator, not the file: waitress's own copy sends it."""
    import base64
    import urllib.request

    env, files, reader = private_index
    wheel = files["1.0.0+a"][1]
    request = urllib.request.Request(url(env, f"packages/{wheel.name}"), headers={
        "Range": "bytes=100-199", "Authorization": "Basic " + base64.b64encode(":".join(reader).encode()).decode()})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206 and response.read() == wheel.read_bytes()[100:200]


def test_a_yanked_version_is_still_sent_to_an_exact_pin_and_its_page_says_yanked(private_index):
    """PEP 592: a yank hides a version from ranges, not from ``==`` pins, whose download must still work."""
    env, files, reader = private_index
    status, answer = post_form(env, "yank", {"name": "mymodel", "version": "1.0.1+a", "reason": "bad split"},
                               credentials(env))
    assert status == 200 and answer["yanked"] == "bad split", answer
    status, page = get(url(env, "simple/mymodel/"), reader)
    assert status == 200 and page.decode().count('data-yanked="bad split"') == 2  # its sdist and its wheel
    wheel = files["1.0.1+a"][1]
    assert_sent_by_sendfile(env, f"packages/{wheel.name}", reader, wheel)


def test_a_kept_simple_page_goes_out_with_sendfile_whole_to_every_concurrent_reader(private_index):
    """Before: a kept page was handed to waitress as bytes, copied into the connection's buffer and sent
    from Python 16 KiB at a time; now from an in-memory file, each request with its own offset."""
    env, files, reader = private_index
    pid = server_pid(env)
    for path in ("simple/mymodel/", "channels/prod/simple/mymodel/"):
        assert_refused_without_bytes(env, path, None, 401)
        first = get(url(env, path), reader)  # rendered and kept
        before = sent_by_sendfile(pid)
        status, page = get(url(env, path), reader)  # from the cache
        assert status == 200 and page == first[1] and files["1.0.0+a"][1].name.encode() in page
        assert sent_by_sendfile(pid) - before >= len(page), "the page did not go out with os.sendfile"
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: get(url(env, path), reader), range(48)))
        assert answers == [(200, page)] * 48
