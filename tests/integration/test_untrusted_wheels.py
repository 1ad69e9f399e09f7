"""What anyone who can upload can do to a release: nothing (issue 18.1, 18.8).

A wheel on the index is hostile input. A forged version whose model is a pickle that runs
a command is never unpickled by the next honest ``make release``; a recorded release whose
file was changed on the index is refused; a wheel with malformed JSON is shown as
unreadable by the registry page, ``make versions``, ``make diff`` and the gate.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import re
import shlex
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version

from pipeline.steps.publish import format_lock
from tests.helpers import PYTHON, assert_clean_error, commit, copy_repo, index_env, index_url, make, pipeline, run
from tests.integration.test_index import credentials, get

pytestmark = pytest.mark.integration

Change = Callable[[str, bytes], bytes]  # (member name, its bytes) -> the forged bytes


class RunsACommand:
    """Unpickling it runs ``command`` (as the user who unpickles)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone that released 1.1.1+titanic (recorded in its releases/) to its own index."""
    tmp = tmp_path_factory.mktemp("untrusted")
    repo = copy_repo(tmp / "repo")
    env = index_env(tmp)
    make(repo, "release", env)
    yield repo, env
    pipeline(repo, env, "index-stop", check=False)


def forge(wheel: Path, version: str, out_dir: Path, change: Change) -> Path:
    """A copy of ``wheel`` as ``version`` with members changed by ``change``, its manifest's hashes and
    RECORD recomputed as a build writes them: a wheel no installer or manifest check tells from a real one."""
    with zipfile.ZipFile(wheel) as source:
        members = {item.filename: source.read(item) for item in source.infolist()}
    old_info = next(name.split("/")[0] for name in members if name.endswith(".dist-info/RECORD"))
    old_version = old_info.removeprefix("mymodel-").removesuffix(".dist-info")
    info = f"mymodel-{version}.dist-info"
    forged = {}
    for name, data in members.items():
        name = name.replace(old_info, info)
        data = change(name, data)
        if name.endswith("/METADATA") or name == "mymodel/version.py":
            data = data.replace(old_version.encode(), version.encode())
        forged[name] = data
    manifest = json.loads(forged["mymodel/models/manifest.json"])
    manifest["version"] = version
    manifest["files"] = {key: hashlib.sha256(forged[f"mymodel/models/{key}"]).hexdigest() for key in manifest["files"]}
    forged["mymodel/models/manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
              for name, data in forged.items() if name != f"{info}/RECORD"]
    forged[f"{info}/RECORD"] = ("\n".join(record + [f"{info}/RECORD,,"]) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"mymodel-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in forged.items():
            archive.writestr(name, data)
    return target


def sdist(real: Path, version: str, out_dir: Path) -> Path:
    """A copy of the sdist ``real`` as ``version``: the other half that makes a version complete on the index."""
    old_root = real.name.removesuffix(".tar.gz")
    target = out_dir / f"mymodel-{version}.tar.gz"
    with tarfile.open(real) as source, tarfile.open(target, "w:gz") as archive:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            member.name = member.name.replace(old_root, f"mymodel-{version}", 1)
            if data is not None and member.name.endswith("PKG-INFO"):
                data = data.replace(old_root.removeprefix("mymodel-").encode(), version.encode())
                member.size = len(data)
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def upload(env: dict, *files: Path) -> None:
    """As the upload user, with twine, then sealed: what anyone holding the upload credentials can do."""
    from pipeline.indexes.base import version_of
    from tests.integration.test_index import seal

    username, password = credentials(env)
    run([PYTHON, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
         "--repository-url", index_url(env), *files],
        env={**os.environ, "TWINE_USERNAME": username, "TWINE_PASSWORD": password})
    first = files[0].name
    if first.startswith("mymodel_data-"):  # the data package is served once stored: nothing to seal
        return
    status, answer = seal(env, version_of(first), *files)
    assert status == 200, answer


def poisoned(marker: Path, seed: int) -> Change:
    """LogisticRegression's model replaced by a pickle that writes ``marker``; every model's split seed
    changed, so the gate would score the published models on the rows both splits held out."""
    def change(name: str, data: bytes) -> bytes:
        if name == "mymodel/models/LogisticRegression/model.joblib":
            return pickle.dumps(RunsACommand(f"id > {shlex.quote(str(marker))}"))
        if name.endswith("/metadata.json"):
            metadata = json.loads(data)
            metadata["data"]["split"]["seed"] = seed
            return json.dumps(metadata, indent=2, sort_keys=True).encode()
        return data
    return change


def index_files(env: dict) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(env["INDEX_DIR"]).glob("mymodel-*")}


def test_a_forged_upload_is_never_unpickled_by_the_next_release(clone, tmp_path):
    repo, env = clone
    marker = tmp_path / "ran"
    forged = forge(repo / "dist/mymodel-1.1.1+titanic-py3-none-any.whl", "1.3.0+titanic", tmp_path, poisoned(marker, 7))
    upload(env, sdist(repo / "dist/mymodel-1.1.1+titanic.tar.gz", "1.3.0+titanic", tmp_path), forged)

    result = make(repo, "release", env, check=False)
    output = result.stdout + result.stderr
    assert not marker.exists(), f"the forged model ran: {marker.read_text()}"
    assert result.returncode == 0 and "Traceback" not in output, output
    assert "logic change against 1.3.0+titanic" in output and "split seed 7 -> 0" in output
    assert ("the published wheel of 1.3.0+titanic was not loaded: this clone has no record of releasing it "
            "(releases/, HEAD's git history)") in output
    # nor are its curves drawn on the new version's figures, and the release says why in one line
    assert ("figures: no baseline drawn (1.3.0+titanic is not in this clone's release records (releases/, HEAD's git "
            "history), so its wheel is not loaded) in ") in output
    gate = output.split("accuracy against 1.3.0+titanic:", 1)[1].split("==>", 1)[0]
    rows = [line for line in gate.splitlines() if line.startswith(("LogisticRegression", "RandomForest", "SVC"))]
    assert len(rows) == 3, gate
    for row in rows:  # each on its own split: the recorded scores are the gated ones
        assert row.endswith("each version's own split: 1.3.0+titanic is not in this clone's release records, "
                            "not loaded"), row
        published, new, gated_published, gated_new = (float(v) for v in row.split()[1:5])
        assert (published, new) == (gated_published, gated_new)
    assert "released mymodel 1.3.1+titanic" in output


def test_a_recorded_release_whose_wheel_changed_on_the_index_is_refused_unloaded(clone, tmp_path):
    """The index (or whoever can write its folder) swaps the wheel of a version this clone released."""
    repo, env = clone
    version = max((re.fullmatch(r"mymodel-(.+)\.txt", p.name).group(1) for p in (repo / "releases").glob("mymodel-*.txt")),
                  key=Version)
    served = Path(env["INDEX_DIR"]) / f"mymodel-{version}-py3-none-any.whl"
    kept = tmp_path / "kept.whl"
    os.link(served, kept)
    marker = tmp_path / "ran"
    os.replace(forge(kept, version, tmp_path / "forged", poisoned(marker, 9)), served)
    before, recorded = index_files(env), (repo / "src/mymodel/version.py").read_text()
    try:
        result = make(repo, "release", env, check=False)
        assert not marker.exists(), f"the swapped model ran: {marker.read_text()}"
        assert_clean_error(result, f"the index serves a wheel of {version} with sha256",
                           f"not the one this clone recorded when it released it (releases/mymodel-{version}.txt), "
                           "so it is not loaded", f"make yank VERSION={version}", "FORCE=1")
        assert index_files(env) == before and (repo / "src/mymodel/version.py").read_text() == recorded
    finally:
        os.replace(kept, served)


def test_a_malformed_wheel_shows_as_unreadable_in_every_reader(clone, tmp_path):
    repo, env = clone
    version, reason = "1.5.0+titanic", "SVC/metadata.json: metrics is null, not an object"

    def null_metrics(name: str, data: bytes) -> bytes:
        return json.dumps({**json.loads(data), "metrics": None}).encode() if name.endswith("SVC/metadata.json") else data

    real = repo / "dist/mymodel-1.1.1+titanic"
    upload(env, sdist(Path(f"{real}.tar.gz"), version, tmp_path),
           forge(Path(f"{real}-py3-none-any.whl"), version, tmp_path, null_metrics))
    url = index_url(env)

    def check_readers(yanked: str | None) -> None:
        code, page = get(url)
        assert code == 200, page.decode()[-2000:]
        row = page.decode().split(f'data-version="{version}"', 1)[1].split("</tr>", 1)[0]
        assert ">unreadable</span>" in row and reason in row and (yanked is None) == (">yanked</span>" not in row)
        code, page = get(f"{url}registry/mymodel/{version.replace('+', '%2B')}/")
        assert code == 200 and reason in page.decode() and f"no diff: {version} cannot be read" in page.decode()
        listed = make(repo, "versions", env)
        line = next(line for line in listed.stdout.splitlines() if line.startswith(version))
        assert f"unreadable: {reason}" in line and "Traceback" not in listed.stderr
        assert (yanked is None) == ("yanked" not in line) and (yanked or "") in line
        rows = json.loads(make(repo, "versions", env, "FORMAT=json").stdout)
        assert next(r for r in rows if r["version"] == version)["unreadable"] == reason
        assert "1.1.1+titanic" in listed.stdout
        assert_clean_error(make(repo, "diff", env, "A=1.1.1+titanic", f"B={version}", check=False),
                           f"the wheel of {version} on the index cannot be read ({reason})")

    check_readers(yanked=None)
    before, recorded = index_files(env), (repo / "src/mymodel/version.py").read_text()
    refused = make(repo, "release", env, check=False)  # the gate's reader: the highest published version
    assert_clean_error(refused, f"cannot compare with {version}, the highest published version", reason,
                       f"make yank VERSION={version}", "FORCE=1")
    assert index_files(env) == before and (repo / "src/mymodel/version.py").read_text() == recorded
    make(repo, "yank", env, f"VERSION={version}", "REASON=malformed metadata")
    check_readers(yanked="malformed metadata")  # yanking it changes nothing else


def test_a_record_on_a_fetched_unmerged_branch_does_not_let_the_gate_unpickle(clone, tmp_path):
    """Anyone who can push to the team remote (issue 27.5): a second clone commits a record of the forged
    wheel on a branch nobody merges and pushes it; ours only fetches. The forged upload is gated on its own
    split, never unpickled: records count only in HEAD's history, not on a remote-tracking ref."""
    repo, env = clone
    version, marker = "1.6.0+titanic", tmp_path / "ran"
    real = repo / "dist/mymodel-1.1.1+titanic"
    forged = [sdist(Path(f"{real}.tar.gz"), version, tmp_path), forge(Path(f"{real}-py3-none-any.whl"), version,
                                                                        tmp_path, poisoned(marker, 11))]
    team = tmp_path / "team.git"
    run(["git", "init", "-q", "--bare", "-b", "main", team])
    run(["git", "remote", "add", "team", team], cwd=repo)
    run(["git", "push", "-q", "team", "HEAD:main"], cwd=repo)
    other = tmp_path / "other"
    run(["git", "clone", "-q", team, other])
    run(["git", "switch", "-q", "-c", "records"], cwd=other)
    (other / "releases").mkdir(exist_ok=True)
    (other / f"releases/mymodel-{version}.txt").write_text(
        format_lock(version, {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in forged},
                    f"{index_url(env)}simple/"))
    commit(other, f"releases: {version}")
    run(["git", "push", "-q", "origin", "records"], cwd=other)
    run(["git", "fetch", "-q", "team"], cwd=repo)
    assert f"releases/mymodel-{version}.txt" in run(["git", "log", "--all", "--name-only", "--format="], cwd=repo).stdout
    upload(env, *forged)

    result = make(repo, "release", env, check=False)
    output = result.stdout + result.stderr
    assert not marker.exists(), f"the forged model ran: {marker.read_text()}"
    assert result.returncode == 0 and "Traceback" not in output, output
    assert f"the published wheel of {version} was not loaded: this clone has no record of releasing it" in output
    assert "released mymodel 1.6.1+titanic" in output
