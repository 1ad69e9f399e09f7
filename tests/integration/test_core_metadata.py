"""Core metadata (PEP 658/714) on the real index: announced on the links, served at
``<wheel-url>.metadata``, and enough for pip and uv to resolve (from the PEP 691
JSON pages they ask for) without wheel bytes."""

from __future__ import annotations

import hashlib
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO, VENV, consumer_env, pipeline, run
from tests.integration.test_index import credentials, get, index, publish_wheel  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def wheel_links(page_url: str, auth=None) -> dict[str, dict[str, str]]:
    """Wheel file name -> its link's attributes (``href`` made absolute)."""
    status, page = get(page_url, auth)
    assert status == 200, page
    links = {}
    for attributes, name in re.findall(r"<a ([^>]*)>([^<]+\.whl)</a>", page.decode()):
        parsed = dict(re.findall(r'([\w-]+)="([^"]*)"', attributes))
        parsed["href"] = urllib.parse.urljoin(page_url, parsed["href"])
        links[name] = parsed
    return links


def test_a_wheel_uploaded_while_the_index_runs_gets_its_metadata_at_once(index, tmp_path):
    page_url = f"http://127.0.0.1:{index['INDEX_PORT']}/simple/mymodel/"
    wheel = publish_wheel(index, tmp_path, "1.0.0", "Requires-Python: >=3.11\nRequires-Dist: numpy<3\n")
    link = wheel_links(page_url)[wheel.name]
    assert link["data-requires-python"] == "&gt;=3.11"
    announced = link["data-core-metadata"]
    assert link["data-dist-info-metadata"] == announced
    status, metadata = get(link["href"].split("#")[0] + ".metadata")
    assert status == 200
    assert announced == f"sha256={hashlib.sha256(metadata).hexdigest()}"
    assert b"Requires-Dist: numpy<3" in metadata and metadata.startswith(b"Metadata-Version: 2.1")
    cached = Path(index["INDEX_STATE"]) / "core-metadata" / f"{hashlib.sha256(wheel.read_bytes()).hexdigest()}.metadata"
    assert cached.read_bytes() == metadata

    pipeline(REPO, index, "index-stop")
    pipeline(REPO, index, "index")
    assert wheel_links(page_url)[wheel.name]["data-core-metadata"] == announced
    assert get(link["href"].split("#")[0] + ".metadata") == (200, metadata)
    assert get(link["href"].split("#")[0].replace("1.0.0", "9.9.9") + ".metadata")[0] == 404


def test_private_reads_protect_the_metadata_files(tmp_path):
    from tests.helpers import index_env

    env = index_env(tmp_path, INDEX_AUTH="read")
    pipeline(REPO, env, "index")
    try:
        auth = credentials(env)
        wheel = publish_wheel(env, tmp_path, "1.0.0")
        url = f"http://127.0.0.1:{env['INDEX_PORT']}/packages/{wheel.name}.metadata"
        assert get(url)[0] == 401
        assert get(url, ("mymodel", "wrong"))[0] == 403
        status, metadata = get(url, auth)
        assert status == 200 and metadata.startswith(b"Metadata-Version: 2.1")
        page = wheel_links(f"http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel/", auth)
        assert page[wheel.name]["data-core-metadata"] == f"sha256={hashlib.sha256(metadata).hexdigest()}"
    finally:
        pipeline(REPO, env, "index-stop", check=False)


def wheel_bytes_served(log: Path) -> dict[str, int]:
    """Bytes of whole wheels the index sent (``.metadata`` files excluded), by path."""
    served: dict[str, int] = {}
    for method, path, status, size, _ in (line.split(" ") for line in log.read_text().splitlines()):
        if path.endswith(".whl") and method == "GET":
            served[path] = served.get(path, 0) + int(size)
    return served


def test_resolving_a_range_downloads_no_wheel_bytes(released, tmp_path):
    log = tmp_path / "requests.log"
    pipeline(released.repo, released.env, "index-stop")
    pipeline(released.repo, {**released.env, "INDEX_REQUEST_LOG": str(log)}, "index")
    try:
        dry_run = run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
                       "--index-url", released.simple_url, "mymodel>=1.1"], env=consumer_env())
        assert "Would install" in dry_run.stdout and f"mymodel-{released.versions[1]}" in dry_run.stdout
        compiled = run([VENV / "bin" / "uv", "pip", "compile", "--no-cache", "--python", sys.executable,
                        "--index-url", released.simple_url, "-"], input="mymodel>=1.1\n",
                       env=consumer_env(UV_PYTHON_DOWNLOADS="never"))
        assert f"mymodel=={released.versions[1]}" in compiled.stdout
        metadata_reads = [line for line in log.read_text().splitlines() if ".whl.metadata 200 " in line]
        assert any(f"/mymodel-{released.versions[1]}-" in line for line in metadata_reads)
        assert any("/scikit_learn-" in line for line in metadata_reads)
        assert wheel_bytes_served(log) == {}
        pages = [line for line in log.read_text().splitlines() if line.startswith("GET /simple/mymodel/ 200 ")]
        assert len(pages) == 2 and all(line.endswith(" application/vnd.pypi.simple.v1+json") for line in pages)

        # A path with %0A writes one escaped line, not a forged one (before: "GET /fake 200 1 text/plain" on its own).
        lines = len(log.read_text().splitlines())
        forged = "%0AGET%20/packages/forged.whl%20200%2099999%20application/octet-stream%0D%0A"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{released.simple_url}x{forged}/", timeout=30)
        deadline = time.monotonic() + 10  # the line is written once the response is sent
        while len(log.read_text().splitlines()) == lines and time.monotonic() < deadline:
            time.sleep(0.05)
        written = log.read_text().splitlines()[lines:]
        assert len(written) == 1 and "forged.whl" in written[0], written
        assert written[0].startswith("GET /simple/x\\x0aGET\\x20/packages/forged.whl\\x20200"), written
        assert wheel_bytes_served(log) == {}  # and every line still parses as five fields
    finally:
        pipeline(released.repo, released.env, "index-stop")
        pipeline(released.repo, released.env, "index")
