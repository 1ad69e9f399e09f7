"""The registry page served by a real index process: listing, cache, escaping, auth, the empty index."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO, index_env, pipeline
from tests.integration.test_index import credentials, get
from tests.integration.test_page_cache import yank
from tests.registry_wheels import release_files

pytestmark = pytest.mark.integration

HOSTILE = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'


def start(env) -> str:
    pipeline(REPO, env, "index")
    return f"http://127.0.0.1:{env['INDEX_PORT']}/"


@pytest.fixture()
def three_releases(tmp_path):
    env = index_env(tmp_path)
    packages = Path(env["INDEX_DIR"])
    for n in range(3):
        release_files(packages, f"1.1.{n}+test", {"LogReg": round(0.80 + n / 100, 4), "SVC": 0.78},
                      card=f"# Card {n}\n\n{HOSTILE}\n", bump={"part": "patch", "kind": "logic", "reasons": [HOSTILE]},
                      seed=n)
    release_files(packages / "half", "1.2.0+test", {"LogReg": 0.9})[1].unlink()  # a wheel without its sdist
    yield env
    pipeline(REPO, env, "index-stop", check=False)


def test_page_lists_complete_versions_newest_first_with_metrics_and_install_lines(three_releases):
    url = start(three_releases)
    status, body = get(url)
    page = body.decode()
    assert status == 200
    rows = [part.split('"', 1)[0] for part in page.split('data-version="')[1:]]
    assert rows == ["1.1.2+test", "1.1.1+test", "1.1.0+test"]  # 1.2.0 has no sdist: not published
    assert f"pip install --index-url {url}simple/ mymodel==1.1.2+test" in page
    assert "0.8200 / 0.8700" in page and "<svg" in page and "<script" not in page
    assert "&lt;script&gt;" in page  # the bump reason, as text
    status, version_page = get(url + "registry/mymodel/1.1.1%2Btest/")
    assert status == 200
    text = version_page.decode()
    assert "<script" not in text and "<img" not in text and "&lt;script&gt;document.title" in text
    assert "split seed 0 -&gt; 1" in text and "1.1.0+test" in text  # the contract diff to the previous version
    assert get(url + "registry/mymodel/9.9.9/")[0] == 404


def test_later_renders_read_the_kept_facts_not_the_wheels(three_releases):
    url = start(three_releases)
    assert get(url)[0] == 200
    kept = sorted((Path(three_releases["INDEX_STATE"]) / "registry").glob("*.json"))
    assert len(kept) == 3  # one per complete version's wheel, by its sha256
    for path in kept:  # a restarted index must take the facts from here, not from the wheels
        facts = json.loads(path.read_text())
        facts["models"]["LogReg"]["metrics"]["accuracy"] = 0.123456
        path.write_text(json.dumps(facts))
    pipeline(REPO, three_releases, "index-stop")
    url = start(three_releases)
    page = get(url)[1].decode()
    assert page.count("0.1235 / ") == 3, page


def listed(url: str) -> list[str]:
    status, body = get(url)
    assert status == 200
    return [part.split('"', 1)[0] for part in body.decode().split('data-version="')[1:]]


def test_the_kept_pages_show_a_version_added_yanked_or_removed_on_the_next_request(three_releases):
    url, packages = start(three_releases), Path(three_releases["INDEX_DIR"])
    assert listed(url) == ["1.1.2+test", "1.1.1+test", "1.1.0+test"] == listed(url)  # the second from memory
    release_files(packages, "1.1.3+test", {"LogReg": 0.85, "SVC": 0.78}, seed=3)  # dropped in by hand
    assert listed(url)[0] == "1.1.3+test"
    status, version_page = get(url + "registry/mymodel/1.1.3%2Btest/")
    assert status == 200 and "split seed 2 -&gt; 3" in version_page.decode()
    yank(three_releases, "1.1.3+test", "leaks labels")
    assert 'class="badge yanked">yanked</span> <span class="muted">leaks labels' in get(url)[1].decode()
    (packages / "mymodel-1.1.3+test.tar.gz").unlink()  # half a version is no version
    assert listed(url)[0] == "1.1.2+test"
    assert get(url + "registry/mymodel/1.1.3%2Btest/")[0] == 404


def test_a_cache_that_cannot_be_written_fails_no_request(three_releases):
    state = Path(three_releases["INDEX_STATE"])
    state.mkdir(parents=True, exist_ok=True)
    (state / "registry").write_text("not a folder")  # every write under it fails, as on a full disk
    url = start(three_releases)
    status, page = get(url)
    assert status == 200 and page.decode().count('data-version="') == 3
    assert "cannot keep the registry facts in" in (state / "server.log").read_text()


def test_an_empty_index_says_how_to_publish_the_first_version(tmp_path):
    env = index_env(tmp_path)
    try:
        status, page = get(start(env))
        assert status == 200 and "make release" in page.decode() and "data-version" not in page.decode()
    finally:
        pipeline(REPO, env, "index-stop", check=False)


def test_private_reads_protect_the_registry_pages(tmp_path):
    env = index_env(tmp_path, INDEX_AUTH="read")
    release_files(Path(env["INDEX_DIR"]), "1.1.1+test", {"LogReg": 0.8})
    try:
        url = start(env)
        for page in (url, url + "registry/mymodel/1.1.1%2Btest/"):
            assert get(page)[0] == 401
            assert get(page, ("mymodel", "wrong"))[0] == 403
            status, body = get(page, credentials(env))
            assert status == 200 and b"1.1.1+test" in body
    finally:
        pipeline(REPO, env, "index-stop", check=False)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024


def test_one_kept_registry_page_answers_every_host_a_client_names(tmp_path):
    """The install lines carry the address the client asked for; the page is kept once, not per Host
    (a page per Host would let any client grow the index's memory)."""
    env = index_env(tmp_path)
    for n in range(100):  # a ~75 KB page
        release_files(Path(env["INDEX_DIR"]), f"1.0.{n}+test", {"LogReg": 0.8, "SVC": 0.78}, seed=n)
    url = start(env)
    try:
        pid = json.loads((Path(env["INDEX_STATE"]) / "server.json").read_text())["pid"]
        assert get(url)[0] == 200
        before = peak_rss_mb(pid)
        for n in range(600):
            request = urllib.request.Request(url, headers={"Host": f"models-{n}.internal:8080"})
            with urllib.request.urlopen(request, timeout=30) as response:
                page = response.read().decode()
            assert f"pip install --index-url http://models-{n}.internal:8080/simple/ mymodel==1.0.99+test" in page
        assert peak_rss_mb(pid) - before < 20, (before, peak_rss_mb(pid))  # 600 kept pages would be ~45 MB
    finally:
        pipeline(REPO, env, "index-stop", check=False)
