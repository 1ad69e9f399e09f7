"""What the embedded index refuses to store or serve: files added to a published version,
hidden names and symbolic links; names it owns never sent to the fallback index; a
legacy JSON that tells the newest version not yanked and each file's digest."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import PYTHON, REPO, consumer_env, index_env, pipeline, run
from tests.integration.test_index import credentials, get, post_upload, real_wheel, served_hashes, twine
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


def real_sdist(directory: Path, version: str) -> Path:
    """A minimal sdist twine accepts (it reads PKG-INFO)."""
    path = directory / f"mymodel-{version}.tar.gz"
    info = f"Metadata-Version: 2.1\nName: mymodel\nVersion: {version}\n".encode()
    with tarfile.open(path, "w:gz") as sdist:
        for name, content in (("PKG-INFO", info), ("setup.cfg", b"")):
            member = tarfile.TarInfo(f"mymodel-{version}/{name}")
            member.size = len(content)
            sdist.addfile(member, io.BytesIO(content))
    return path


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


def test_a_published_version_gains_no_file_and_pip_installs_the_released_wheel(index, tmp_path):
    sdist, wheel = real_sdist(tmp_path, VERSION), real_wheel(tmp_path, VERSION)
    # A release's order: the sdist, then the wheel of a version that has only its sdist.
    for released in (sdist, wheel):
        result = upload(index, released)
        assert result.returncode == 0, result.stdout + result.stderr
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
    yanked = real_wheel(tmp_path, "9.1.0+titanic")
    assert upload(index, *old, yanked).returncode == 0
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
    [yanked_entry] = project["releases"]["9.1.0+titanic"]
    assert (yanked_entry["yanked"], yanked_entry["yanked_reason"]) == (True, "bad")
    simple_page = json.loads(get_json(f"{base}simple/mymodel/"))  # every file the pages list, same digests
    assert sorted((f["filename"], f["hashes"]["sha256"]) for f in simple_page["files"]) == sorted(
        (e["filename"], e["digests"]["sha256"]) for files in project["releases"].values() for e in files)
    assert get(f"{base}mymodel-staging/json")[0] == 404
