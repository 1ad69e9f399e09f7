"""Yanking (PEP 592) on the real index with real pip and uv: ranges skip a yanked
version, an exact pin still installs it with the reason, and the yank survives a restart."""

from __future__ import annotations

import base64
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from index.yanks import REASON_LIMIT
from tests.helpers import VENV, assert_clean_error, consumer_env, make, pipeline, run

pytestmark = pytest.mark.integration

REASON = "accuracy regression <0.80> & \"bad\" split"


def page(released) -> str:
    with urllib.request.urlopen(released.simple_url + "mymodel/", timeout=30) as response:
        return response.read().decode()


def yanked_links(released) -> dict[str, str]:
    """File name -> the data-yanked value (HTML-escaped, as served)."""
    return {name: reason for reason, name in re.findall(r'<a [^>]*data-yanked="([^"]*)"[^>]*>([^<]+)</a>',
                                                        page(released))}


def pip_download(released, tmp_path, requirement: str):
    target = tmp_path / f"download-{len(list(tmp_path.iterdir()))}"
    result = run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--index-url",
                  released.simple_url, "-d", target, requirement], env=consumer_env())
    return [p.name for p in target.iterdir()], result


def uv_installed_version(released, tmp_path, requirement: str) -> str:
    uv, env = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never")
    venv = tmp_path / f"uv-{len(list(tmp_path.iterdir()))}"
    run([uv, "venv", "--quiet", "--python", sys.executable, venv], env=env)
    run([uv, "pip", "install", "--quiet", "--refresh", "--no-deps", "--python", venv / "bin" / "python",
         "--index-url", released.simple_url, requirement], env=env)
    frozen = run([uv, "pip", "freeze", "--python", venv / "bin" / "python"], env=env).stdout
    return re.search(r"^mymodel==(\S+)$", frozen, re.MULTILINE).group(1)


def test_yank_makes_ranges_skip_the_version_until_unyanked(released, tmp_path):
    old, new = released.versions
    yank = make(released.repo, "yank", released.env, f"VERSION={new}", f"REASON={REASON}")
    assert f"yanked mymodel {new}: {REASON}" in yank.stdout
    assert "warning" not in yank.stderr
    try:
        escaped = "accuracy regression &lt;0.80&gt; &amp; &quot;bad&quot; split"
        assert yanked_links(released) == {f"mymodel-{new}.tar.gz": escaped, f"mymodel-{new}-py3-none-any.whl": escaped}
        assert '#sha256=' in page(released)  # the digests stay on every link

        downloaded, _ = pip_download(released, tmp_path, "mymodel>=1.1")
        assert downloaded == [f"mymodel-{old}-py3-none-any.whl"]
        assert uv_installed_version(released, tmp_path, "mymodel>=1.1") == old

        downloaded, pinned = pip_download(released, tmp_path, f"mymodel=={new}")
        assert downloaded == [f"mymodel-{new}-py3-none-any.whl"]
        assert "yanked" in pinned.stderr and REASON in pinned.stderr, pinned.stderr
        assert uv_installed_version(released, tmp_path, f"mymodel=={new}") == new

        pipeline(released.repo, released.env, "index-stop")
        pipeline(released.repo, released.env, "index")
        assert set(yanked_links(released).values()) == {escaped}
        downloaded, _ = pip_download(released, tmp_path, "mymodel>=1.1")
        assert downloaded == [f"mymodel-{old}-py3-none-any.whl"]
    finally:
        unyank = make(released.repo, "unyank", released.env, f"VERSION={new}")
    assert f"unyanked mymodel {new}" in unyank.stdout
    assert yanked_links(released) == {}
    downloaded, _ = pip_download(released, tmp_path, "mymodel>=1.1")
    assert downloaded == [f"mymodel-{new}-py3-none-any.whl"]
    assert uv_installed_version(released, tmp_path, "mymodel>=1.1") == new
    assert sorted(p.name for p in Path(released.env["INDEX_DIR"]).glob(f"mymodel-{new}*")) == [
        f"mymodel-{new}-py3-none-any.whl", f"mymodel-{new}.tar.gz"]


def test_yanking_every_version_is_allowed_with_a_warning(released):
    old, new = released.versions
    try:
        make(released.repo, "yank", released.env, f"VERSION={new}", "REASON=first")
        last = make(released.repo, "yank", released.env, f"VERSION={old}", "REASON=second")
        assert f"yanked mymodel {old}: second" in last.stdout
        assert "warning: every version of mymodel is now yanked" in last.stderr
        assert len(yanked_links(released)) == 4
    finally:
        for version in released.versions:
            make(released.repo, "unyank", released.env, f"VERSION={version}")
    assert yanked_links(released) == {}


def test_yank_of_an_unknown_version_lists_the_published_ones(released):
    result = make(released.repo, "yank", released.env, "VERSION=9.9.9+titanic", "REASON=x", check=False)
    assert_clean_error(result, "mymodel 9.9.9+titanic is not published", "1.1.1+titanic, 1.1.2+titanic", "VERSION=")
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1
    missing = make(released.repo, "yank", released.env, check=False)
    assert_clean_error(missing, "needs VERSION=")
    assert yanked_links(released) == {}


def test_the_yank_route_needs_the_upload_credentials(released):
    form = urllib.parse.urlencode({"name": "mymodel", "version": released.versions[1], "reason": "x"}).encode()
    url = f"http://127.0.0.1:{released.env['INDEX_PORT']}/+yank"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=30)
    assert anonymous.value.code == 401
    wrong = urllib.request.Request(url, data=form, headers={"Authorization": "Basic bWU6d3Jvbmc="})  # me:wrong
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=30)
    assert refused.value.code == 403
    assert yanked_links(released) == {}


def test_a_yank_reason_over_the_limit_is_refused_by_make_yank_and_by_the_index(released):
    """Every page of the project carries the reason: one past REASON_LIMIT characters is refused before any
    request by make yank, and by the index itself for any other client holding the credential."""
    version, too_long = released.versions[1], "r" * (REASON_LIMIT + 1)
    result = make(released.repo, "yank", released.env, f"VERSION={version}", f"REASON={too_long}", check=False)
    assert_clean_error(result, f"at most {REASON_LIMIT} characters", f"this one has {REASON_LIMIT + 1}", "REASON=")
    creds = json.loads((Path(released.env["INDEX_STATE"]) / "credentials.json").read_text())
    token = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    form = urllib.parse.urlencode({"name": "mymodel", "version": version, "reason": too_long}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{released.env['INDEX_PORT']}/+yank", data=form,
                                     headers={"Authorization": f"Basic {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and f"at most {REASON_LIMIT} characters" in json.loads(refused.value.read())["error"]
    assert yanked_links(released) == {}
    make(released.repo, "yank", released.env, f"VERSION={version}", f"REASON={too_long[:-1]}")  # at the limit
    try:
        assert set(yanked_links(released).values()) == {too_long[:-1]}
    finally:
        make(released.repo, "unyank", released.env, f"VERSION={version}")
    assert yanked_links(released) == {}


def test_a_damaged_yank_file_refuses_new_yanks_and_keeps_serving(released):
    state = Path(released.env["INDEX_STATE"]) / "yanked.json"
    before = state.read_bytes() if state.exists() else None
    state.write_text('{"mymodel": {"1.1.2+titanic": "bad')  # cut short: a disk fault or a hand edit
    try:
        result = make(released.repo, "yank", released.env, f"VERSION={released.versions[1]}", "REASON=x", check=False)
        assert_clean_error(result, "could not record it", "yanked.json is damaged", "restore it or delete it")
        assert "mymodel-1.1.2+titanic" in page(released)
    finally:
        state.unlink()
        if before is not None:
            state.write_bytes(before)
    assert yanked_links(released) == {}


def test_yanking_again_without_a_reason_keeps_it_and_a_new_reason_replaces_it(released):
    new = released.versions[1]
    try:
        make(released.repo, "yank", released.env, f"VERSION={new}", f"REASON={REASON}")
        again = make(released.repo, "yank", released.env, f"VERSION={new}")
        assert f"mymodel {new} is already yanked: {REASON}; kept" in again.stdout
        escaped = "accuracy regression &lt;0.80&gt; &amp; &quot;bad&quot; split"
        assert set(yanked_links(released).values()) == {escaped}

        replaced = make(released.repo, "yank", released.env, f"VERSION={new}", "REASON=a leaked feature")
        assert f"yanked mymodel {new}: a leaked feature (replaces: {REASON})" in replaced.stdout
        assert set(yanked_links(released).values()) == {"a leaked feature"}
    finally:
        make(released.repo, "unyank", released.env, f"VERSION={new}")
    assert yanked_links(released) == {}
