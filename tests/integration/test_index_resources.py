"""The index under hostile load, as a real process: zip bombs, idle connections, a replaced packages folder."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from index.registry.facts import FACTS_FORMAT
from tests.helpers import REPO, assert_clean_error, index_env, pipeline
from tests.integration.test_index import (  # noqa: F401 (index: a fixture)
    OTHER, credentials, get, index, post_upload, publish_wheel, real_sdist, real_wheel, seal, served_hashes, upload_form)
from tests.integration.test_registry_page import peak_rss_mb
from tests.registry_wheels import release_files

pytestmark = pytest.mark.integration

BOMB_MB = 300  # inflated; ~0.3 MB on disk


def bomb_wheel(directory: Path, version: str, member: str) -> Path:
    """A release (wheel and sdist) whose wheel member ``member`` inflates to BOMB_MB MB: a zip bomb.

    Written as a stream, so the test itself never holds the inflated bytes."""
    wheel, _ = release_files(directory, version, {"LogReg": 0.8})
    with zipfile.ZipFile(wheel) as small:
        members = {name: small.read(name) for name in small.namelist()}
    chunk = b"A" * 2**20
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in members.items():
            if name != member:
                archive.writestr(name, content)
        with archive.open(member, "w", force_zip64=True) as out:
            out.write(members[member][:200] + b"\n\n" if member.endswith("METADATA") else b'{"padding": "')
            for _ in range(BOMB_MB):
                out.write(chunk)
            out.write(b"" if member.endswith("METADATA") else b'"}')
    return wheel


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def timed_get(url: str) -> tuple[int, bytes, float]:
    started = time.monotonic()
    status, body = get(url)
    return status, body, time.monotonic() - started


def test_a_zip_bomb_wheel_is_refused_at_upload_and_bounded_when_dropped_in_by_hand(index, tmp_path):
    url = f"http://127.0.0.1:{index['INDEX_PORT']}/"
    packages, state = Path(index["INDEX_DIR"]), Path(index["INDEX_STATE"])
    pid = json.loads((state / "server.json").read_text())["pid"]
    metadata_bomb = bomb_wheel(tmp_path / "upload", "1.0.0+bomb", "mymodel-1.0.0+bomb.dist-info/METADATA")
    assert metadata_bomb.stat().st_size < 2 * 2**20
    assert get(url + "health")[0] == 200
    before = peak_rss_mb(pid)

    status = post_upload(index, metadata_bomb.name, metadata_bomb.read_bytes(), credentials(index))
    assert status == 400
    assert not (packages / metadata_bomb.name).exists() and list(packages.glob(".*.part")) == []

    # Dropped in by hand (or uploaded before this rule): the pages read no more than the limits.
    bomb_wheel(packages, "1.0.0+bomb", "mymodel-1.0.0+bomb.dist-info/METADATA")
    bomb_wheel(packages, "1.0.1+bomb", "mymodel/models/LogReg/metadata.json")
    status, page, seconds = timed_get(url + "simple/mymodel/")
    assert status == 200 and seconds < 5, seconds
    links = dict(part.split('">', 1)[::-1] for part in page.decode().split("<a ")[1:])
    metadata_link = next(attrs for name, attrs in links.items() if name.startswith("mymodel-1.0.0+bomb"))
    assert "data-core-metadata" not in metadata_link  # no core metadata for that file; the file is listed
    assert "data-core-metadata" in next(a for n, a in links.items() if n.startswith("mymodel-1.0.1+bomb"))
    assert get(url + "packages/mymodel-1.0.0%2Bbomb-py3-none-any.whl.metadata")[0] == 404

    status, registry, seconds = timed_get(url)
    assert status == 200 and seconds < 5, seconds
    text = registry.decode()
    assert text.count(">unreadable</span>") == 2
    assert "mymodel-1.0.0+bomb.dist-info/METADATA is 300 MiB, more than the 4 MiB the index reads" in text
    assert "mymodel/models/LogReg/metadata.json is 300 MiB, more than the 4 MiB the index reads" in text
    status, version_page, _ = timed_get(url + "registry/mymodel/1.0.0%2Bbomb/")
    assert status == 200 and ">unreadable</span>" in version_page.decode()

    assert peak_rss_mb(pid) - before < 100, (before, peak_rss_mb(pid))  # was 9 GB for an 800 MB METADATA
    assert folder_bytes(state) < 2**20, sorted((p.name, p.stat().st_size) for p in state.rglob("*") if p.is_file())


def test_a_kept_oversized_metadata_is_removed_not_read(index, tmp_path):
    """A METADATA kept by an index without the limit (801 MB, read whole after each restart)."""
    publish_wheel(index, tmp_path, "1.0.0")
    page_url = f"http://127.0.0.1:{index['INDEX_PORT']}/simple/mymodel/"
    assert b"data-core-metadata" in get(page_url)[1]
    kept = next((Path(index["INDEX_STATE"]) / "core-metadata").glob("*.metadata"))
    pipeline(REPO, index, "index-stop")
    with open(kept, "r+b") as grown:  # sparse: 800 MB on the books, nothing on disk
        grown.truncate(800 * 2**20)
    pipeline(REPO, index, "index")
    pid = json.loads((Path(index["INDEX_STATE"]) / "server.json").read_text())["pid"]
    status, page = get(page_url)
    assert status == 200 and b"data-core-metadata" in page  # extracted from the wheel again, within the limit
    assert kept.stat().st_size < 2**20
    assert peak_rss_mb(pid) < 200


def test_idle_connections_do_not_keep_others_out(index):
    """150 clients that send half a request and wait: waitress's default limit of 100 connections,
    idle for up to 300 s, left /health unanswered for minutes."""
    port = int(index["INDEX_PORT"])
    with contextlib.ExitStack() as sockets:
        for _ in range(150):
            idle = sockets.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            idle.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: never complete
        time.sleep(0.5)  # let the server take them all in
        for _ in range(3):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
                assert response.status == 200
            assert time.monotonic() - started < 1.0
        assert served_hashes(index) == {}  # a real page too


def test_an_idle_connection_is_closed_and_a_slow_upload_that_moves_is_not(tmp_path):
    """An upload that takes longer than the idle timeout succeeds while its bytes keep coming
    (a 1 GB wheel from a slow client); a connection that sends nothing is closed."""
    env = index_env(tmp_path, INDEX_CHANNEL_TIMEOUT="2")
    pipeline(REPO, env, "index")
    try:
        port = int(env["INDEX_PORT"])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as idle:
            idle.sendall(b"GET /simple/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            started = time.monotonic()
            assert idle.recv(100) == b""  # closed by the server
            assert time.monotonic() - started < 10
        wheel = real_wheel(tmp_path, "1.0.0+slow", project=OTHER)
        content_type, body = upload_form(wheel.name, wheel.read_bytes())
        user, password = credentials(env)
        upload = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            upload.putrequest("POST", "/")
            upload.putheader("Content-Type", content_type)
            upload.putheader("Content-Length", str(len(body)))
            upload.putheader("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
            upload.endheaders()
            started, pieces = time.monotonic(), 12
            for n in range(pieces):  # a piece every 0.5 s: 6 s in all, three times the idle timeout
                upload.send(body[n * len(body) // pieces:(n + 1) * len(body) // pieces])
                time.sleep(0.5)
            assert time.monotonic() - started > 3 * 2 - 0.5
            assert upload.getresponse().status == 200
        finally:
            upload.close()
        assert wheels(env, OTHER) == [wheel.name]
    finally:
        pipeline(REPO, env, "index-stop", check=False)


def test_a_channel_timeout_that_is_no_number_is_a_clean_error(tmp_path):
    env = index_env(tmp_path, INDEX_CHANNEL_TIMEOUT="soon")
    result = pipeline(REPO, env, "index", check=False)
    assert_clean_error(result, "INDEX_CHANNEL_TIMEOUT='soon' is not a whole number of seconds",
                       "INDEX_CHANNEL_TIMEOUT=30")
    assert not (Path(env["INDEX_STATE"]) / "server.json").exists()


def test_pages_follow_a_packages_folder_moved_aside_and_recreated(index, tmp_path):
    """A restore from backup: the folder is missing when a request comes, then made again."""
    packages = Path(index["INDEX_DIR"])
    first, _ = release_files(packages, "1.0.0+a", {"LogReg": 0.8})
    assert wheels(index) == [first.name]
    packages.rename(tmp_path / "packages.old")
    assert served_hashes(index) == {}  # asked while the folder is missing
    packages.mkdir()
    by_hand, _ = release_files(packages, "1.0.1+a", {"LogReg": 0.8})
    assert wheels(index) == [by_hand.name]
    uploaded, sdist = real_wheel(tmp_path, "1.0.2+a"), real_sdist(tmp_path, "1.0.2+a")
    for path in (sdist, uploaded):
        assert post_upload(index, path.name, path.read_bytes(), credentials(index)) == 200
    assert seal(index, "1.0.2+a", sdist, uploaded)[0] == 200
    assert wheels(index) == [by_hand.name, uploaded.name]
    added, _ = release_files(packages, "1.0.3+a", {"LogReg": 0.8})  # by hand, after the upload
    assert wheels(index) == [by_hand.name, uploaded.name, added.name]
    by_hand.unlink()
    assert wheels(index) == [uploaded.name, added.name]
    status, removed_link = get(f"http://127.0.0.1:{index['INDEX_PORT']}/packages/{by_hand.name}")
    assert status == 404
    registry = get(f"http://127.0.0.1:{index['INDEX_PORT']}/")[1].decode()
    assert 'data-version="1.0.3+a"' in registry and 'data-version="1.0.1+a"' not in registry


def wheels(env, project: str = "mymodel") -> list[str]:
    return sorted(name for name in served_hashes(env, project=project) if name.endswith(".whl"))


def test_the_model_card_shows_its_unicode_as_written(index):
    """Read as ASCII bytes, every "…" of a card showed as three U+FFFD on the version page."""
    card = "# Titanic models\n\nAccuracy … 0.82 on the held-out split; Zoë’s café data, ±0.01.\n"
    release_files(Path(index["INDEX_DIR"]), "1.0.0+a", {"LogReg": 0.8}, card=card)
    status, page = get(f"http://127.0.0.1:{index['INDEX_PORT']}/registry/mymodel/1.0.0%2Ba/")
    text = page.decode()
    assert status == 200 and "\ufffd" not in text
    assert "Accuracy … 0.82 on the held-out split; Zoë’s café data, ±0.01." in text

    # Facts kept by an index before the fix hold the damaged card: they are read from the wheel again.
    kept = next((Path(index["INDEX_STATE"]) / "registry").glob("*.json"))
    facts = json.loads(kept.read_text())
    assert facts.pop("format") == FACTS_FORMAT
    kept.write_text(json.dumps({**facts, "card": facts["card"].replace("…", "\ufffd" * 3)}))
    pipeline(REPO, index, "index-stop")
    pipeline(REPO, index, "index")
    status, page = get(f"http://127.0.0.1:{index['INDEX_PORT']}/registry/mymodel/1.0.0%2Ba/")
    assert status == 200 and "Accuracy … 0.82" in page.decode() and "\ufffd" not in page.decode()
