"""What the embedded index refuses to store or serve: a release's files before its seal, files added
to a sealed version, a burned number, hidden names and symbolic links; names it owns never sent to
the fallback index; a legacy JSON that tells the newest version not yanked and each file's digest;
promotions of versions that are not published whole, and channels that fail closed."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, consumer_env, index_env, pipeline, run
from tests.integration.test_index import (credentials, get, post_form, post_upload, publish, real_sdist, real_wheel,
                                          seal, served_hashes, status_of, twine, upload_form)
from tests.integration.test_simple_json import PIP_ACCEPT, fetch, post_yank

pytestmark = pytest.mark.integration

VERSION = "1.1.1+titanic"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """One index for this module, its fallback on (as ``make index`` runs it); each test
    uses versions of its own."""
    env = index_env(tmp_path_factory.mktemp("index-uploads"), INDEX_FALLBACK="on")
    pipeline(REPO, env, "index")
    yield env
    pipeline(REPO, env, "index-stop", check=False)


def stored(env, fragment: str) -> list[str]:
    """The names in the package folder (hidden ones too) that contain ``fragment``."""
    return sorted(p.name for p in Path(env["INDEX_DIR"]).iterdir() if fragment in p.name)


def listed(env, fragment: str) -> dict[str, str]:
    return {name: digest for name, digest in served_hashes(env).items() if fragment in name}


def get_json(url: str) -> bytes:
    status, _, body = fetch(url, PIP_ACCEPT)
    assert status == 200, body
    return body


def upload(env, *files: Path):
    user, password = credentials(env)
    return twine(env, *files, username=user, password=password)


def no_redirect(url: str, accept: str | None = None) -> tuple[int, str | None, bytes]:
    """Status, Location and body, never following a redirect (nothing leaves loopback)."""
    class Refuse(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.build_opener(Refuse).open(request, timeout=30) as response:
            return response.status, response.headers.get("Location"), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location"), exc.read()


def twin_wheel(directory: Path, version: str) -> Path:
    """A minimal ``mymodel-onnx`` wheel, as a release with ONNX copies uploads last."""
    import zipfile

    path = directory / f"mymodel_onnx-{version}-py3-none-any.whl"
    info = f"mymodel_onnx-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mymodel_onnx/__init__.py", "")
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: mymodel-onnx\nVersion: {version}\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


def onnx_listed(env) -> dict[str, str]:
    status, page = get(f"http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel-onnx/")
    return {} if status == 404 else {e["filename"]: e["hashes"]["sha256"] for e in json.loads(get_json(
        f"http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel-onnx/"))["files"]}


def test_a_published_version_gains_no_file_and_pip_installs_the_released_wheel(index, tmp_path):
    sdist, wheel = real_sdist(tmp_path, VERSION), real_wheel(tmp_path, VERSION)
    # A release's order: the sdist, then the wheel of a version that has only its sdist; then its seal.
    for released in (sdist, wheel):
        result = upload(index, released)
        assert result.returncode == 0, result.stdout + result.stderr
    assert listed(index, "1.1.1") == {}  # served nowhere until sealed
    assert seal(index, VERSION, sdist, wheel)[0] == 200
    published = listed(index, "1.1.1")
    assert sorted(published) == sorted([sdist.name, wheel.name])

    specific = real_wheel(tmp_path, VERSION, "Summary: added later\n", tag="cp311-none-any")
    assert post_upload(index, specific.name, specific.read_bytes(), credentials(index)) == 409
    refused = upload(index, specific)
    assert refused.returncode != 0 and "409" in refused.stdout + refused.stderr
    assert "already has its wheel" in refused.stdout + refused.stderr
    for second in ("mymodel-1.1.1+Titanic-py3-none-any.whl", "mymodel-1.01.1+titanic-1-py3-none-any.whl",
                   "mymodel-1.1.1+titanic.zip"):  # the same version spelt otherwise, a build tag, a second sdist
        assert post_upload(index, second, b"extra", credentials(index)) == 409, second
    assert listed(index, "1.1.1") == published
    assert stored(index, "1.1.1") == sorted(published)  # no partial left

    target = tmp_path / "installed"
    run([PYTHON, "-m", "pip", "install", "--no-deps", "--only-binary", ":all:", "--target", target,
         "--index-url", f"http://127.0.0.1:{index['INDEX_PORT']}/simple/", f"mymodel=={VERSION}"],
        env=consumer_env())
    installed = target / f"mymodel-{VERSION}.dist-info"
    assert "Tag: py3-none-any" in (installed / "WHEEL").read_text()  # the cp311 wheel won before
    assert "added later" not in (installed / "METADATA").read_text()


def test_a_channel_version_is_one_wheel(index):
    auth = credentials(index)
    assert post_upload(index, "mymodel_prod-1-py3-none-any.whl", b"first promotion", auth) == 200
    assert post_upload(index, "mymodel_prod-1-cp311-none-any.whl", b"added later", auth) == 409
    assert post_upload(index, "mymodel-prod-2.tar.gz", b"an sdist", auth) == 400
    assert post_upload(index, "mymodel_prod-2-py3-none-any.whl", b"second promotion", auth) == 200
    assert stored(index, "prod") == ["mymodel_prod-1-py3-none-any.whl", "mymodel_prod-2-py3-none-any.whl"]


def test_two_wheels_racing_for_one_version_store_one(index):
    auth = credentials(index)
    assert post_upload(index, "mymodel-0.0.1+warm-py3-none-any.whl", b"warm", auth) == 200  # auth now cached
    # Large enough that both pass the check made before the bytes are copied.
    names = [f"mymodel-1.0.0+race-{tag}.whl" for tag in ("py3-none-any", "cp311-none-any")]
    contents = [bytes([n]) * (32 << 20) for n in range(len(names))]
    start = threading.Barrier(len(names))

    def send(name: str, content: bytes) -> int:
        start.wait()
        return post_upload(index, name, content, auth)

    with ThreadPoolExecutor(len(names)) as pool:
        statuses = list(pool.map(send, names, contents))
    assert sorted(statuses) == [200, 409], statuses
    winner = names[statuses.index(200)]
    assert stored(index, "race") == [winner]


def test_a_hidden_upload_is_refused_with_a_reason(index, tmp_path):
    hidden = real_wheel(tmp_path, "1").rename(tmp_path / ".hidden-1-py3-none-any.whl")
    result = upload(index, hidden)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "400" in output and "starts with '.'" in output, output
    assert post_upload(index, hidden.name, b"hidden", credentials(index)) == 400
    assert stored(index, "hidden") == []


def test_a_symbolic_link_in_the_folder_is_neither_listed_nor_served(index, tmp_path):
    packages = Path(index["INDEX_DIR"])
    kept = packages / "mymodel-3.0.0-py3-none-any.whl"
    kept.write_bytes(b"a real file")
    outside = tmp_path / "outside.whl"
    outside.write_bytes(b"first")
    link = packages / "mymodel-3.0.1-py3-none-any.whl"
    link.symlink_to(outside)
    assert listed(index, "3.0") == {kept.name: hashlib.sha256(b"a real file").hexdigest()}
    assert get(f"http://127.0.0.1:{index['INDEX_PORT']}/packages/{link.name}")[0] == 404
    outside.write_bytes(b"changed")  # what the page would have hashed before: still not listed
    assert listed(index, "3.0") == {kept.name: hashlib.sha256(b"a real file").hexdigest()}
    assert get(f"http://127.0.0.1:{index['INDEX_PORT']}/packages/{kept.name}") == (200, b"a real file")


def test_names_the_index_owns_are_never_redirected_to_the_fallback_index(index):
    (Path(index["INDEX_DIR"]) / "mymodel-4.0.0-py3-none-any.whl").write_bytes(b"published")
    simple = f"http://127.0.0.1:{index['INDEX_PORT']}/simple/"
    for name in ("mymodel-staging", "MyModel_Staging", "mymodel.staging", "mymodel-x"):
        for accept in (None, PIP_ACCEPT):
            status, location, _ = no_redirect(f"{simple}{name}/", accept)
            assert (status, location) == (404, None), (name, accept)
    assert no_redirect(f"{simple}mymodel/")[0] == 200
    status, location, _ = no_redirect(f"{simple}MyModel/")  # ours, to the normalised name on this index
    assert status == 301 and location == f"{simple}mymodel/"
    status, location, _ = no_redirect(f"{simple}requests/", PIP_ACCEPT)  # the runtime dependencies
    assert status in (302, 303) and location and location.endswith("/requests/")
    assert not location.startswith("http://127.0.0.1")


def test_the_legacy_json_names_the_newest_version_not_yanked_with_each_files_digest(index, tmp_path):
    old = [real_sdist(tmp_path, "9.0.0+titanic"), real_wheel(tmp_path, "9.0.0+titanic", "Requires-Python: >=3.9\n")]
    yanked = [real_sdist(tmp_path, "9.1.0+titanic"), real_wheel(tmp_path, "9.1.0+titanic")]
    publish(index, "9.0.0+titanic", *old)
    publish(index, "9.1.0+titanic", *yanked)
    post_yank(index, "9.1.0+titanic", "bad")
    base = f"http://127.0.0.1:{index['INDEX_PORT']}/"
    status, body = get(f"{base}mymodel/json")
    assert status == 200, body
    project = json.loads(body)
    assert project["info"] == {"name": "mymodel", "version": "9.0.0+titanic"}  # pypiserver's said 9.1.0+titanic
    assert project["urls"] == project["releases"]["9.0.0+titanic"]
    entries = {entry["filename"]: entry for entry in project["releases"]["9.0.0+titanic"]}
    assert sorted(entries) == sorted(path.name for path in old)
    for path in old:
        entry = entries[path.name]
        assert entry["digests"] == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        # As pip quotes the link it found on the simple page: pip-compile looks the digest up by it.
        assert entry["url"] == f"{base}packages/{path.name.replace('+', '%2B')}"
        assert entry["packagetype"] == ("sdist" if path.name.endswith(".tar.gz") else "bdist_wheel")
        assert entry["size"] == path.stat().st_size and entry["yanked"] is False
    assert entries[old[1].name]["requires_python"] == ">=3.9"
    assert [(e["yanked"], e["yanked_reason"]) for e in project["releases"]["9.1.0+titanic"]] == [(True, "bad")] * 2
    simple_page = json.loads(get_json(f"{base}simple/mymodel/"))  # every file the pages list, same digests
    assert sorted((f["filename"], f["hashes"]["sha256"]) for f in simple_page["files"]) == sorted(
        (e["filename"], e["digests"]["sha256"]) for files in project["releases"].values() for e in files)
    assert get(f"{base}mymodel-staging/json")[0] == 404


def test_a_release_is_served_nowhere_until_it_is_sealed_then_all_at_once(index, tmp_path):
    version = "5.0.0+titanic"
    sdist, wheel, twin = real_sdist(tmp_path, version), real_wheel(tmp_path, version), twin_wheel(tmp_path, version)
    assert upload(index, sdist, wheel, twin).returncode == 0
    base = f"http://127.0.0.1:{index['INDEX_PORT']}/"
    status, _, page = fetch(f"{base}simple/mymodel/", PIP_ACCEPT)  # 404 when the index serves no mymodel yet
    assert status == 404 or version not in json.loads(page)["versions"]
    assert listed(index, "5.0.0") == {} and onnx_listed(index) == {}
    for path in (sdist, wheel, twin):
        assert get(f"{base}packages/{path.name}")[0] == 404, path.name
    assert get(f"{base}packages/{wheel.name}.metadata")[0] == 404
    status, legacy = get(f"{base}mymodel/json")
    assert status == 404 or version not in json.loads(legacy)["releases"]
    assert version not in get(f"{base}registry/mymodel/")[1].decode()
    # the index's records say what it holds and why it serves none of it, to the upload credential only
    status, records = get(f"{base}+versions?name=mymodel", credentials(index))
    [staged] = [r for r in json.loads(records)["versions"] if r["version"] == version]
    assert staged["state"] == "staged" and staged["abandoned"] is False
    assert staged["files"] == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (sdist, wheel)}
    reader = json.loads((Path(index["INDEX_STATE"]) / "reader.json").read_text())
    assert get(f"{base}+versions", (reader["username"], reader["password"]))[0] == 403
    # a seal is exactly what the index holds, with those sha256, or nothing is served
    status, answer = seal(index, version, sdist, wheel)
    assert status == 409 and f"also holds {twin.name}, which the release did not name" in answer["error"]
    (tmp_path / "elsewhere").mkdir()
    status, answer = seal(index, version, sdist, wheel, twin, real_sdist(tmp_path / "elsewhere", "5.0.1"))
    assert status == 409 and "does not hold mymodel-5.0.1.tar.gz" in answer["error"]
    named = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (sdist, wheel, twin)}
    status, answer = post_form(index, "seal", {"name": "mymodel", "version": version,
                                               "files": json.dumps({**named, twin.name: "0" * 64})}, credentials(index))
    assert status == 409 and f"{twin.name} has sha256 {named[twin.name]} on the index, not {'0' * 64}" in answer["error"]
    assert post_form(index, "seal", {"name": "mymodel", "version": version, "files": json.dumps(named)}, None)[0] == 401
    assert listed(index, "5.0.0") == {} and onnx_listed(index) == {}
    assert seal(index, version, sdist, wheel, twin)[0] == 200
    assert listed(index, "5.0.0") == {p.name: named[p.name] for p in (sdist, wheel)}
    assert onnx_listed(index) == {twin.name: named[twin.name]}
    assert get(f"{base}packages/{twin.name}") == (200, twin.read_bytes())
    assert seal(index, version, sdist, wheel, twin)[0] == 200  # a retried seal


def test_a_sealed_version_takes_no_file_and_a_taken_back_number_is_burned_for_good(index, tmp_path):
    version = "6.0.0+titanic"
    sdist, wheel = real_sdist(tmp_path, version), real_wheel(tmp_path, version)
    publish(index, version, sdist, wheel)  # sealed without an -onnx twin
    forged = upload(index, twin_wheel(tmp_path, version))
    output = forged.stdout + forged.stderr
    assert forged.returncode != 0 and "409" in output, output
    assert post_upload(index, twin_wheel(tmp_path, version).name, b"forged", credentials(index)) == 409
    assert onnx_listed(index) == {} or all("6.0.0" not in name for name in onnx_listed(index))
    pipeline_client_remove(index, version)  # taken back through the index, as a failed release does
    assert listed(index, "6.0.0") == {}
    other = tmp_path / "other"
    other.mkdir()
    again = upload(index, real_sdist(other, version), real_wheel(other, version, "Summary: other bytes\n"))
    output = again.stdout + again.stderr
    assert again.returncode != 0 and "409" in output, output
    request = upload_status_and_reason(index, sdist.name, b"other bytes")
    assert request[0] == 409 and f"mymodel {version} was taken back on" in request[1] and "is burned" in request[1]
    # the record outlives a restart and a package folder replaced by an empty one
    pipeline(REPO, index, "index-stop")
    packages = Path(index["INDEX_DIR"])
    packages.rename(packages.with_name("packages.before"))
    try:
        pipeline(REPO, index, "index")
        status, reason = upload_status_and_reason(index, sdist.name, b"other bytes")
        assert status == 409 and "is burned" in reason
        assert upload_status_and_reason(index, "mymodel-6.0.1+titanic.tar.gz", b"a new number")[0] == 200
    finally:
        pipeline(REPO, index, "index-stop")
        shutil.rmtree(packages)
        packages.with_name("packages.before").rename(packages)
        pipeline(REPO, index, "index")


def pipeline_client_remove(env, version: str) -> None:
    """pypiserver's ``remove_pkg``, as ``make release`` sends it to take a failed release back."""
    form = urllib.parse.urlencode({":action": "remove_pkg", "name": "mymodel", "version": version}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/", data=form, method="POST")
    assert status_of(request, credentials(env)) == 200


def upload_status_and_reason(env, filename: str, content: bytes) -> tuple[int, str]:
    """The upload form posted by hand: the status and the reason line the index answered with."""
    content_type, body = upload_form(filename, content)
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/", data=body, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials(env)).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.reason
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason


def test_the_index_refuses_to_promote_an_unsealed_an_sdist_only_a_yanked_or_an_unknown_version(index, tmp_path):
    def promote(version: str) -> tuple[int, dict]:
        return post_form(index, "promote", {"channel": "refusals", "name": "mymodel", "version": version},
                         credentials(index))

    staged = "7.0.0+titanic"
    assert upload(index, real_sdist(tmp_path, staged)).returncode == 0  # a release killed after its sdist
    status, answer = promote(staged)
    assert status == 409 and f"mymodel {staged} is not sealed" in answer["error"]
    half = "7.0.1+titanic"
    shutil.copy(real_sdist(tmp_path, half), Path(index["INDEX_DIR"]))  # only an sdist, put there by hand
    status, answer = promote(half)
    assert status == 409 and "is incomplete (the index serves only mymodel-7.0.1+titanic.tar.gz)" in answer["error"]
    status, answer = promote("7.9.9+titanic")
    assert status == 404 and "is not on this index" in answer["error"]
    yanked = "7.1.0+titanic"
    publish(index, yanked, real_sdist(tmp_path, yanked), real_wheel(tmp_path, yanked))
    post_yank(index, yanked, "bad split")
    status, answer = promote(yanked)
    assert status == 409 and "is yanked (bad split)" in answer["error"]
    status, history = get(f"http://127.0.0.1:{index['INDEX_PORT']}/channels/?channel=refusals")
    assert json.loads(history)["channels"] == {}


def test_a_channel_pins_the_promoted_bytes_and_fails_closed_when_they_change(index, tmp_path, pip_venv):
    old, new = "8.0.0+titanic", "8.0.1+titanic"
    files = {}
    for version in (old, new):
        files[version] = [real_sdist(tmp_path, version), real_wheel(tmp_path, version), twin_wheel(tmp_path, version)]
        publish(index, version, *files[version])
    status, answer = post_form(index, "promote", {"channel": "pinned", "name": "mymodel", "version": new,
                                                  "note": "ann: train 12", "by": "mallory", "commit": "forged"},
                               credentials(index))
    assert status == 200, answer
    promotion = answer["promotion"]
    assert (promotion["user"], promotion["note"]) == ("mymodel", "ann: train 12")
    assert promotion["commit"] == "unknown (its wheel records no commit)"  # these wheels hold no models
    assert promotion["files"] == {
        "mymodel": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files[new][:2]},
        "mymodel-onnx": {files[new][2].name: hashlib.sha256(files[new][2].read_bytes()).hexdigest()}}
    channel = f"http://127.0.0.1:{index['INDEX_PORT']}/channels/pinned/"
    python = pip_venv(tmp_path / "venv")

    def pip_download(requirement: str = "mymodel") -> subprocess.CompletedProcess:
        return run([python, "-m", "pip", "download", "--no-deps", "--retries", "0", "--dest", tmp_path / "got",
                    "--index-url", channel + "simple/", requirement], env=consumer_env(), check=False)
    assert pip_download().returncode == 0 and (tmp_path / "got" / files[new][1].name).exists()
    # channel views serve only what they list (issue 28, item 14)
    for unlisted in files[old]:
        status, body = get(f"{channel}packages/{unlisted.name}")
        assert status == 404 and b"not in channel pinned" in body, unlisted.name
    # the promoted wheel removed behind the index's back: the channel serves nothing
    wheel = Path(index["INDEX_DIR"]) / files[new][1].name
    original = wheel.read_bytes()
    wheel.unlink()
    status, body = get(f"{channel}simple/mymodel/")
    assert status == 404 and f"{wheel.name} is gone".encode() in body
    assert b"serves nothing rather than other bytes" in body
    shutil.rmtree(tmp_path / "got")
    assert pip_download().returncode != 0 and not list((tmp_path / "got").glob("*"))
    # the same name with other bytes: never served under the channel
    wheel.write_bytes(original + b"\0")
    status, body = get(f"{channel}simple/mymodel/")
    assert status == 404 and f"{wheel.name} changed".encode() in body
    assert get(f"{channel}packages/{wheel.name}")[0] == 404
    assert pip_download(f"mymodel=={new}").returncode != 0
    wheel.write_bytes(original)
    assert pip_download().returncode == 0
