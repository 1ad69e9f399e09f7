"""Release safety: a failure at any step, bad input, a dead index or racing
releases leave nothing half-published and nothing recorded (docs/reliability.md)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from pipeline.config import load_dataset_config
from pipeline.steps.data import load_dataset
from tests.helpers import (
    assert_clean_error, copy_repo, index_env, make, pipeline, train_quickly,
)

pytestmark = pytest.mark.integration


def snapshot(repo: Path, env: dict) -> dict:
    dist = repo / "dist"
    return {
        "version_file": (repo / "src/mymodel/version.py").read_text(),
        "releases": sorted(p.name for p in (repo / "releases").iterdir()),
        "dist": sorted(p.name for p in dist.iterdir()) if dist.is_dir() else None,
        "index": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()  # mymodel-onnx's files are mymodel_onnx-*
                  for pattern in ("mymodel-*", "mymodel_onnx-*") for p in Path(env["INDEX_DIR"]).glob(pattern)},
    }


def assert_released_whole(result, repo: Path, env: dict, before: dict, version: str = "1.1.2+titanic") -> dict:
    """The run released ``version`` with all its files, next to what was there, and left no partial
    folder; the snapshot after it."""
    assert f"released mymodel {version}" in result.stdout
    after = snapshot(repo, env)
    assert sorted(after["index"]) == sorted([*before["index"], f"mymodel-{version}.tar.gz",
                                             f"mymodel-{version}-py3-none-any.whl",
                                             f"mymodel_onnx-{version}-py3-none-any.whl"])
    assert not list((repo / "dist").glob(".partial-*"))
    return after


def forget_numbers(env: dict, kept: str = "1.1.1+titanic") -> None:
    """Test set-up, not a release: make the index forget every number but ``kept`` it saw used, so each
    test of this module finds an index that saw one release and publishes 1.1.2 (a taken-back number
    is burned for good otherwise: index/numbers.py)."""
    import sqlite3

    from index.statedb import STATE_FILE

    with sqlite3.connect(Path(env["INDEX_STATE"]) / STATE_FILE, timeout=30) as db:
        db.execute("DELETE FROM versions WHERE version != ?", (kept,))


def unpublish(repo: Path, env: dict, version: str, before: dict) -> None:
    """Take a test's extra release back off the index and out of the clone (the ``unchanged`` fixture
    then makes the index forget its number)."""
    import base64
    import urllib.request

    creds = json.loads((Path(env["INDEX_STATE"]) / "credentials.json").read_text())
    token = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
    for project in ("mymodel", "mymodel_onnx"):  # the version's -onnx wheel too, as file names spell it
        request = urllib.request.Request(
            f"http://127.0.0.1:{env['INDEX_PORT']}/", headers={"Authorization": f"Basic {token}"},
            data=f":action=remove_pkg&name={project}&version={version.replace('+', '%2B')}".encode())
        urllib.request.urlopen(request, timeout=30).close()
    (repo / "src/mymodel/version.py").write_text(before["version_file"])
    (repo / f"releases/mymodel-{version}.txt").unlink(missing_ok=True)
    for record in set((repo / "releases").glob("mymodel-data-*.txt")) - {repo / "releases" / n for n in before["releases"]}:
        record.unlink()  # a CSV release's data package record (its wheel, mymodel_data-*, stays on the index)
    for name in (f"mymodel-{version}.tar.gz", f"mymodel-{version}-py3-none-any.whl",
                 f"mymodel_onnx-{version}-py3-none-any.whl"):
        (repo / "dist" / name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A clone that has released 1.1.1+titanic to its own index."""
    tmp = tmp_path_factory.mktemp("faults")
    repo = copy_repo(tmp / "repo")
    train_quickly(repo)  # the module releases thirty times
    env = index_env(tmp, BUMP="patch")  # each test's release publishes 1.1.2, though nothing changed
    make(repo, "release", env)
    yield repo, env
    pipeline(repo, env, "index-stop", check=False)


@pytest.fixture()
def unchanged(published):
    """Asserts that the test leaves the clone, dist/ and the index exactly as they were."""
    repo, env = published
    before = snapshot(repo, env)
    assert set(before["index"]) == {"mymodel-1.1.1+titanic.tar.gz", "mymodel-1.1.1+titanic-py3-none-any.whl",
                                    "mymodel_onnx-1.1.1+titanic-py3-none-any.whl"}
    yield repo, env
    assert snapshot(repo, env) == before
    forget_numbers(env)


@pytest.mark.parametrize("fault", ["index", "version", "train", "gate", "build", "upload", "after-first-upload",
                                   "verify", "record"])
def test_a_failure_at_any_step_changes_nothing(unchanged, fault):
    repo, env = unchanged
    result = make(repo, "release", {**env, "RELEASE_FAULT": fault}, check=False)
    assert_clean_error(result, f"injected fault at {fault}")
    if fault in ("upload", "after-first-upload", "verify", "record"):
        assert "removed the partial 1.1.2+titanic from the index" in result.stderr
    if fault in ("upload", "verify", "record"):  # after the last upload, mymodel-onnx's wheel
        assert "removed the partial mymodel-onnx 1.1.2+titanic from the index too" in result.stdout


def test_index_killed_during_upload_then_the_next_release_recovers(published):
    repo, env = published
    before = snapshot(repo, env)
    result = make(repo, "release", {**env, "RELEASE_FAULT": "after-first-upload:kill-index"}, check=False)
    assert_clean_error(result, "went away during the upload", "the next make release removes it")
    leftovers = list((repo / "dist").glob(".partial-1.1.2+titanic-*"))
    assert len(leftovers) == 1
    assert json.loads((leftovers[0] / "intent.json").read_text())["accepted"] == ["mymodel-1.1.2+titanic.tar.gz"]
    assert not list(Path(env["INDEX_DIR"]).glob(".*.part"))  # the killed server left no partial file
    assert snapshot(repo, env)["version_file"] == before["version_file"]
    status = pipeline(repo, env, "index-status").stdout
    assert "not running" in status

    pipeline(repo, env, "index")  # the half-published 1.1.2 (sdist only) is served nowhere: never sealed
    assert_clean_error(pipeline(repo, env, "lock", "--version", "1.1.2+titanic", check=False),
                       "mymodel 1.1.2+titanic is not on")
    pipeline(repo, env, "index-stop")
    recovered = make(repo, "release", env)  # the next release starts the index again, takes it back...
    assert "removed the partial 1.1.2+titanic" in recovered.stdout
    # ...and never publishes its number again (a number is used once)
    assert "1.1.2+titanic was used before (taken back on " in recovered.stdout
    after = assert_released_whole(recovered, repo, env, before, "1.1.3+titanic")
    for name, digest in before["index"].items():  # nothing published before was touched
        assert after["index"][name] == digest
    # Put the clone back to one release for the other tests of this module.
    pipeline(repo, env, "index")
    unpublish(repo, env, "1.1.3+titanic", before)
    assert snapshot(repo, env) == before
    forget_numbers(env)


@pytest.mark.parametrize("variables, fragments", [
    ({"BUMP": "banana"}, ["BUMP='banana' is not a bump"]),
    ({"DATA": "Titanic_v2"}, ["use DATA=titanic.v2"]),
    ({"DATA": "titanic@v2"}, ["cannot be a PEP 440 local label"]),
    ({"DATA_FILE": "/nonexistent/data.csv"}, ["does not exist"]),
    ({"INDEX_URL": "http://127.0.0.1:9/"}, ["does not answer"]),
], ids=["bad-bump", "non-canonical-tag", "impossible-tag", "missing-data-file", "index-down"])
def test_bad_input_changes_nothing(unchanged, variables, fragments):
    repo, env = unchanged
    assert_clean_error(make(repo, "release", {**env, **variables}, check=False), *fragments)


BAD_FILES = {
    "empty": ("", "is empty"),
    "not CSV": ("\x00\x01\x02PK\x03\x04 binary, not a table\n\"unclosed,\n1,2,3,4,5\n", "not a readable CSV"),
    "no target": ("pclass,sex,age,sibsp,parch,fare,embarked\n" + "1,male,3,0,0,7.2,S\n" * 20, "target column 'survived' is missing"),
    "one class": ("pclass,sex,age,sibsp,parch,fare,embarked,survived\n" + "1,male,3,0,0,7.2,S,1\n" * 20, "has one class"),
    "all missing": ("pclass,sex,age,sibsp,parch,fare,embarked,survived\n"
                    + "1,male,,0,0,7.2,S,1\n1,female,,0,0,7.2,C,0\n" * 10, "feature column 'age' is all missing"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_data_files_change_nothing(unchanged, tmp_path, case):
    repo, env = unchanged
    content, fragment = BAD_FILES[case]
    data = tmp_path / "data.csv"
    data.write_text(content)
    assert_clean_error(make(repo, "release", {**env, "DATA_FILE": str(data)}, check=False), fragment)


def test_wrong_or_missing_credentials_change_nothing(unchanged):
    repo, env = unchanged
    external = {**env, "INDEX_URL": f"http://127.0.0.1:{env['INDEX_PORT']}/"}
    wrong = make(repo, "release", {**external, "INDEX_USERNAME": "mymodel", "INDEX_PASSWORD": "wrong"}, check=False)
    assert_clean_error(wrong, "refused the upload credentials (HTTP 403)")
    assert_clean_error(make(repo, "release", external, check=False), "no upload credentials")


def test_unwritable_dist_changes_nothing(unchanged):
    repo, env = unchanged
    dist = repo / "dist"
    saved = dist.with_name("dist.saved")
    dist.rename(saved)
    dist.write_text("a file where the dist/ folder should be")  # root ignores permissions: this still fails
    try:
        assert_clean_error(make(repo, "release", env, check=False), "cannot write the build to")
    finally:
        dist.unlink()
        saved.rename(dist)


def worse_titanic(path: Path) -> Path:
    """The Titanic list with the target shuffled: models trained on it are worse."""
    config = load_dataset_config()
    frame = load_dataset(config).frame.copy()
    frame["survived"] = frame["survived"].sample(frac=1.0, random_state=1).to_numpy()
    frame.to_csv(path, index=False)
    return path


def test_metric_gate_stops_a_worse_release_and_force_records_the_override(unchanged, tmp_path):
    repo, env = unchanged
    worse = worse_titanic(tmp_path / "worse.csv")
    refused = make(repo, "release", {**env, "DATA_FILE": str(worse)}, check=False)
    assert_clean_error(refused, "accuracy dropped by more than 0.01 against 1.1.1+titanic", "FORCE=1")
    assert "<- drop" in refused.stdout and "published" in refused.stdout
    before = snapshot(repo, env)
    forced = make(repo, "release", {**env, "DATA_FILE": str(worse), "FORCE": "1"})
    assert "released mymodel 1.1.2+titanic" in forced.stdout
    with zipfile.ZipFile(repo / "dist/mymodel-1.1.2+titanic-py3-none-any.whl") as wheel:
        manifest = json.loads(wheel.read("mymodel/models/manifest.json"))
    assert manifest["release"]["gate_overridden"]["against"] == "1.1.1+titanic"
    unpublish(repo, env, "1.1.2+titanic", before)  # so the module's other tests see one release


def test_a_clone_that_cannot_record_takes_the_release_back(unchanged):
    repo, env = unchanged
    releases = repo / "releases"
    saved = releases.with_name("releases.saved")
    releases.rename(saved)
    releases.write_text("a file where the releases/ folder should be")
    try:
        result = make(repo, "release", env, check=False)
        assert_clean_error(result, "cannot record 1.1.2+titanic in this clone",
                           "removed the partial 1.1.2+titanic from the index")
        assert not list(repo.glob("src/mymodel/.version.py.tmp"))
    finally:
        releases.unlink()
        saved.rename(releases)


def test_a_release_killed_between_its_uploads_is_taken_back_by_the_next(unchanged):
    """SIGKILL (OOM, a cancelled CI job): no handler runs; the intent file written before
    each upload lets the next release recognise the half-published version as its own. The killed
    release trained (no cache): its cross-validation workers were ended with training, so nothing it
    started holds its output open (they used to, for their 300 s idle timeout, and make waited)."""
    repo, env = unchanged
    before = snapshot(repo, env)
    killed = make(repo, "release", {**env, "RELEASE_FAULT": "after-first-upload:sigkill", "RELEASE_CACHE": "off"},
                  check=False, timeout=280)  # under the workers' 300 s: a wait for them fails the test
    assert killed.returncode != 0 and "Killed" in killed.stderr
    assert sorted(snapshot(repo, env)["index"]) == sorted([*before["index"], "mymodel-1.1.2+titanic.tar.gz"])
    assert snapshot(repo, env)["version_file"] == before["version_file"]
    recovered = make(repo, "release", env)
    assert "recovering an interrupted release: removed the partial 1.1.2+titanic from the index" in recovered.stdout
    assert "1.1.2+titanic was used before (taken back on " in recovered.stdout
    assert_released_whole(recovered, repo, env, before, "1.1.3+titanic")
    unpublish(repo, env, "1.1.3+titanic", before)


@pytest.mark.parametrize("fault", ["after-first-upload:sigterm", "verify:sigterm", "verify:sigint"])
def test_an_interrupted_release_takes_its_upload_back_and_says_so(unchanged, fault):
    repo, env = unchanged
    result = make(repo, "release", {**env, "RELEASE_FAULT": fault}, check=False)
    signal_name = fault.split(":")[1]
    assert_clean_error(result, "removed the partial 1.1.2+titanic from the index; nothing was recorded")
    assert ("terminated (SIGTERM)" if signal_name == "sigterm" else "interrupted:") in result.stderr
    assert f"exited {143 if signal_name == 'sigterm' else 130}" not in result.stderr  # make reports its own 2
    assert not list((repo / "dist").glob(".partial-*"))


@pytest.mark.parametrize("fault", ["verify:sigint", "record-commit:sigint"])
def test_a_release_whose_parent_ignored_sigint_is_interrupted_alike(unchanged, fault):
    """A background job (`make release &` in a script, some CI runners) starts with SIGINT
    ignored; its SIGINT still takes the release back, or is held until the record is whole."""
    repo, env = unchanged
    before = snapshot(repo, env)
    result = make(repo, "release", {**env, "RELEASE_FAULT": fault}, check=False, sigint_ignored=True)
    if fault.startswith("verify"):
        assert_clean_error(result, "interrupted: removed the partial 1.1.2+titanic from the index; nothing was recorded")
        assert not list((repo / "dist").glob(".partial-*"))
    else:
        assert_clean_error(result, "interrupted after mymodel 1.1.2+titanic was published and recorded")
        unpublish(repo, env, "1.1.2+titanic", before)


@pytest.mark.parametrize("fault, said", [("record-commit:sigterm", "terminated (SIGTERM)"),
                                         ("record-commit:sigint", "interrupted")])
def test_an_interruption_while_recording_waits_until_the_record_is_whole(unchanged, fault, said):
    repo, env = unchanged
    before = snapshot(repo, env)
    result = make(repo, "release", {**env, "RELEASE_FAULT": fault}, check=False)
    assert_clean_error(result, f"{said} after mymodel 1.1.2+titanic was published and recorded")
    assert "removed the partial" not in result.stderr and "nothing was" not in result.stderr
    assert '"1.1.2+titanic"' in (repo / "src/mymodel/version.py").read_text()
    assert (repo / "releases/mymodel-1.1.2+titanic.txt").is_file()
    assert {"mymodel-1.1.2+titanic.tar.gz", "mymodel-1.1.2+titanic-py3-none-any.whl"} <= set(snapshot(repo, env)["index"])
    unpublish(repo, env, "1.1.2+titanic", before)


def test_a_release_killed_at_its_commit_point_is_recorded_by_the_next(unchanged):
    """Killed after the release lock was written but before version.py: the version is
    published and locked, so the next run finishes the record instead of deleting it."""
    repo, env = unchanged
    before = snapshot(repo, env)
    killed = make(repo, "release", {**env, "RELEASE_FAULT": "record-commit:sigkill"}, check=False)
    assert killed.returncode != 0
    assert (repo / "releases/mymodel-1.1.2+titanic.txt").is_file()
    assert snapshot(repo, env)["version_file"] == before["version_file"]
    nothing_to_publish = pipeline(repo, env, "index-status")  # the index still serves 1.1.2 whole
    assert "running" in nothing_to_publish.stdout
    recovered = make(repo, "release", {**env, "RELEASE_FAULT": "version"}, check=False)
    assert "1.1.2+titanic was published and recorded; finished its record" in recovered.stdout
    assert '"1.1.2+titanic"' in (repo / "src/mymodel/version.py").read_text()
    assert {"mymodel-1.1.2+titanic.tar.gz", "mymodel-1.1.2+titanic-py3-none-any.whl"} <= set(snapshot(repo, env)["dist"])
    assert not list((repo / "dist").glob(".partial-*"))
    unpublish(repo, env, "1.1.2+titanic", before)


def test_an_upload_stored_but_answered_500_is_recognised_as_ours(unchanged):
    repo, env = unchanged
    before = snapshot(repo, env)
    result = make(repo, "release", {**env, "RELEASE_FAULT": "sdist-upload:answer-500"})
    assert ("the index answered HTTP 500 to mymodel-1.1.2+titanic.tar.gz but holds it with our sha256: "
            "upload kept") in result.stdout
    assert "released mymodel 1.1.2+titanic" in result.stdout
    unpublish(repo, env, "1.1.2+titanic", before)
