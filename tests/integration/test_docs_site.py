"""The documentation site served: ``make docs-serve`` on a free loopback port, rebuilt on a change, and
the built site at the index's /docs/ (read-only, from site/ only), linked from the registry page, with
Material's scripts and search working in Chromium under the index's headers."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import VENV, copy_repo, free_port, index_env, make, pipeline
from tests.integration.test_index import get

pytestmark = pytest.mark.integration

PIN_LINE = "python -m pip install --index-url http://127.0.0.1:8080/simple/ mymodel==2.0.0+titanic.v2"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A clone whose site make docs built."""
    repo = copy_repo(tmp_path_factory.mktemp("docs") / "repo")
    make(repo, "docs", dict(os.environ), timeout=300)
    return repo


def wait_for(url: str, wanted: str, timeout: float = 90) -> str:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
            if wanted in text:
                return text
            last = "served without " + repr(wanted)
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise AssertionError(f"{url} did not serve {wanted!r} in {timeout} s ({last})")


def test_make_docs_serve_serves_the_site_on_loopback_and_rebuilds_on_a_change(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(["make", "--no-print-directory", "-C", repo, "docs-serve", f"VENV={VENV}",
                               f"DOCS_PORT={port}"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        consume = wait_for(f"http://127.0.0.1:{port}/consume/", "poetry source add")
        assert "mymodel==2.0.0+titanic.v2" in consume and "livereload" in consume
        page = repo / "docs" / "yanking.md"
        page.write_text(page.read_text().replace("# Yanking and rollback\n", "# Yanking and rollback\n\nEdited while served.\n"))
        wait_for(f"http://127.0.0.1:{port}/yanking/", "Edited while served.")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert "Serving on http://127.0.0.1:" in (tmp_path / "serve.log").read_text()


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """A request whose path goes out exactly as written (urllib would normalise ``..``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_index_serves_the_built_site_at_docs_and_the_registry_page_links_to_it(built, tmp_path, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    env = index_env(tmp_path)
    port, url = int(env["INDEX_PORT"]), f"http://127.0.0.1:{env['INDEX_PORT']}/"
    site = built / "site"
    (site / ".hidden").write_text("not for the index")
    (site / "leak").symlink_to(built / "dataset.toml")
    (site / "linked").symlink_to(site / "consume", target_is_directory=True)
    pipeline(built, env, "index")
    try:
        status, registry = get(url)
        assert status == 200 and b'<a href="docs/" id="docs-link">Documentation</a>' in registry
        with urllib.request.urlopen(url + "docs/consume/", timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
            assert PIN_LINE in response.read().decode().replace("&amp;", "&")
        for path, moved_to in (("/docs", "/docs/"), ("/docs/consume", "/docs/consume/")):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path)
            answer = connection.getresponse()
            assert answer.status == 301 and answer.headers["Location"].endswith(moved_to), (path, answer.status)
            connection.close()
        css = next((site / "assets" / "stylesheets").glob("main.*.min.css")).name
        status, body = raw_get(port, f"/docs/assets/stylesheets/{css}")
        assert status == 200 and body == (site / "assets" / "stylesheets" / css).read_bytes()
        secret = (built / "dataset.toml").read_bytes()
        for path in ("/docs/../dataset.toml", "/docs/%2e%2e/dataset.toml", "/docs/..%2fdataset.toml", "/docs/.hidden",
                     "/docs/leak", "/docs/linked/", "/docs/linked/index.html", "/docs/no-such-page/"):
            status, body = raw_get(port, path)
            assert status in (404, 303) and secret not in body and b"not for the index" not in body, (path, status)

        chromium.get(url)
        chromium.find_element(By.ID, "docs-link").click()
        assert chromium.current_url == url + "docs/"
        assert "mymodel" in chromium.title
        # Material's scripts ran under the index's Content-Security-Policy, and its search (a worker) answers.
        assert chromium.execute_script("return typeof document$") == "object"
        search = chromium.find_element(By.CSS_SELECTOR, "input.md-search__input")
        search.click()
        search.send_keys("channel")
        WebDriverWait(chromium, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    finally:
        pipeline(built, env, "index-stop", check=False)


def test_an_index_without_a_built_site_says_how_to_build_it_and_keeps_private_reads_private(tmp_path):
    repo = copy_repo(tmp_path / "repo")  # never built: no site/
    env = index_env(tmp_path, INDEX_AUTH="read")
    pipeline(repo, env, "index")
    try:
        url = f"http://127.0.0.1:{env['INDEX_PORT']}/docs/"
        assert get(url)[0] == 401
        credential = json.loads((Path(env["INDEX_STATE"]) / "reader.json").read_text())
        status, body = get(url, (credential["username"], credential["password"]))
        assert status == 404 and b"run make docs in the repository" in body
    finally:
        pipeline(repo, env, "index-stop", check=False)

