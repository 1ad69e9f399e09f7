"""The training data as a package: ``mymodel-data``, published by make release and pinned by the models.

The wine release (a session fixture) publishes it; a copy of that clone and of its index
releases again with the same data, with a column added and with ``publish = false``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from pipeline.steps.data_wheel import build_wheel, describe, write_file
from tests.helpers import (
    VENV, assert_clean_error, commit, consumer_env, edit_config, index_env, index_url, make, pipeline, run,
)
from tests.integration.test_untrusted_wheels import upload

pytestmark = pytest.mark.integration

DATA_WHEEL = "mymodel_data-{}-py3-none-any.whl"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frame_sha256(path: Path) -> str:
    """The sha256 of the data in ``path`` as a release reads it: the canonical form of its frame."""
    from pipeline.steps import frames, sources

    return frames.frame_sha256(sources.read_source(str(path)))


def data_wheels(env: dict[str, str]) -> list[str]:
    return sorted(p.name for p in Path(env["INDEX_DIR"]).glob("mymodel_data-*"))


def model_metadata(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        return json.loads(archive.read("mymodel/models/LogisticRegression/metadata.json"))


def team_clone(source: Path, destination: Path, records: str | None = "*.txt") -> Path:
    """A teammate's clone: the release commit, and the releases/ ``records`` the team commits (None: none)."""
    run(["git", "clone", "-q", source, destination])
    (destination / "releases").mkdir(exist_ok=True)
    for record in (source / "releases").glob(records) if records else ():
        shutil.copy2(record, destination / "releases" / record.name)
    return destination


def changed_data(frame, csv: Path, change) -> Path:
    change(frame.copy()).to_csv(csv, index=False)
    return csv


def test_a_csv_release_publishes_its_data_package_and_the_models_pin_it(wine_release):
    repo, env, csv = wine_release.repo, wine_release.env, wine_release.csv
    assert "data: first data package -> publishes mymodel-data==1.0.0+wine" in wine_release.output
    assert data_wheels(env) == [DATA_WHEEL.format("1.0.0+wine")]
    served = Path(env["INDEX_DIR"]) / DATA_WHEEL.format("1.0.0+wine")
    record = (repo / "releases/mymodel-data-1.0.0+wine.txt").read_text()
    assert f"mymodel-data==1.0.0+wine \\\n    --hash=sha256:{sha256(served)}" in record

    with zipfile.ZipFile(served) as archive:
        facts = json.loads(archive.read("mymodel_data/metadata.json"))
        parquet = archive.read("mymodel_data/data.parquet")
        assert archive.getinfo("mymodel_data/data.parquet").compress_type == zipfile.ZIP_DEFLATED
    import io

    import pandas as pd

    frame = wine_release.frame
    from_csv = pd.read_csv(csv)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(parquet)), from_csv)  # the frame, typed as read
    assert facts["sha256"] == frame_sha256(csv) and facts["file_sha256"] == hashlib.sha256(parquet).hexdigest()
    assert facts["rows"] == len(frame) and facts["size"] == len(parquet) and facts["file"] == "data.parquet"
    assert [c["name"] for c in facts["columns"]] == list(frame.columns)
    assert facts["columns"] == [{"name": n, "type": str(t)} for n, t in from_csv.dtypes.items()]
    # The file's name only: the release machine's path (an absolute source, here) is never published.
    assert (facts["source"], facts["target"], facts["tag"], facts["version"]) == ("wine.csv", "target", "wine", "1.0.0+wine")

    pinned = model_metadata(repo / "dist/mymodel-1.1.1+wine-py3-none-any.whl")["data"]["package"]
    assert pinned["requirement"] == "mymodel-data==1.0.0+wine" and pinned["sha256"] == sha256(served)
    assert (pinned["rows"], pinned["columns"], pinned["size"]) == (len(frame), frame.shape[1], len(parquet))
    with zipfile.ZipFile(repo / "dist/mymodel-1.1.1+wine-py3-none-any.whl") as archive:
        card = archive.read("mymodel-1.1.1+wine.dist-info/METADATA").decode()
    assert f"Data package: `pip install mymodel-data==1.0.0+wine` (wheel sha256 `{sha256(served)}`" in card
    assert "source `wine.csv`" in card and model_metadata(repo / "dist/mymodel-1.1.1+wine-py3-none-any.whl")[
        "data"]["source"] == "wine.csv"
    # No absolute path anywhere the index shows: the wheels' JSON and cards, the registry's pages.
    machine = str(wine_release.tmp)
    for wheel in Path(env["INDEX_DIR"]).glob("mymodel*-1.*+wine-py3-none-any.whl"):
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.endswith((".json", "METADATA")):
                    assert machine not in archive.read(name).decode(), (wheel.name, name)
    root = index_url(env)
    for page in ("", "registry/mymodel/", "registry/mymodel/1.1.1+wine/"):
        with urllib.request.urlopen(root + page, timeout=30) as response:
            shown = response.read().decode()
        assert "wine.csv" in shown or page != "registry/mymodel/1.1.1+wine/", page
        assert machine not in shown, page


def test_the_data_package_installs_in_a_fresh_venv_and_reads_back(wine_release, tmp_path):
    venv, env, uv = tmp_path / "venv", consumer_env(UV_PYTHON_DOWNLOADS="never"), VENV / "bin" / "uv"
    run([uv, "venv", "-q", "--python", sys.executable, venv], env=env)
    index = f"http://127.0.0.1:{wine_release.env['INDEX_PORT']}/simple/"
    run([uv, "pip", "install", "-q", "--python", venv / "bin/python", "--index-url", index,
         "mymodel-data==1.0.0+wine"], env=env)
    script = ("import hashlib, json, mymodel_data as d; f = d.frame(); "
              "print(json.dumps([len(f), list(f.columns), hashlib.sha256(d.path().read_bytes()).hexdigest(), "
              "d.metadata()['tag'], f['target'].iloc[0], [str(t) for t in f.dtypes]]))")
    rows, columns, digest, tag, first, types = json.loads(run([venv / "bin/python", "-c", script], env=env).stdout)
    frame = wine_release.frame
    with zipfile.ZipFile(Path(wine_release.env["INDEX_DIR"]) / DATA_WHEEL.format("1.0.0+wine")) as archive:
        facts = json.loads(archive.read("mymodel_data/metadata.json"))
    assert (rows, columns, digest, tag, first) == (len(frame), list(frame.columns), facts["file_sha256"], "wine",
                                                   frame["target"].iloc[0])
    assert types == [c["type"] for c in facts["columns"]]  # frame() gives the dtypes the models were trained from


def test_a_fresh_clone_without_the_data_verifies_from_the_data_package(wine_release, tmp_path):
    clone = team_clone(wine_release.repo, tmp_path / "clone")
    hidden = wine_release.csv.with_name("wine.csv.hidden")
    wine_release.csv.rename(hidden)  # nowhere on this machine: only the index has the data
    try:
        out = make(clone, "verify", wine_release.env, "VERSION=1.1.1+wine").stdout
    finally:
        hidden.rename(wine_release.csv)
    assert "data: mymodel-data==1.0.0+wine from" in out
    assert "sha256 checked against the pin of the wheel releases/mymodel-1.1.1+wine.txt records" in out
    assert "reproducible: the rebuilt wheel is byte-identical to the published one" in out


def teammate(wine_release, tmp: Path, records: str | None) -> tuple[Path, dict[str, str]]:
    """A teammate's clone of the wine release with its own index, holding the wine release's files, and
    the wine release's ``records`` (a glob in releases/; None: none)."""
    repo, env = team_clone(wine_release.repo, tmp / "repo", records), index_env(tmp)
    Path(env["INDEX_DIR"]).mkdir()
    for published in Path(wine_release.env["INDEX_DIR"]).glob("mymodel*"):
        shutil.copy2(published, Path(env["INDEX_DIR"]) / published.name)
    return repo, env


@pytest.fixture(scope="module")
def data_clone(wine_release, tmp_path_factory):
    """No record of the wine release's versions: its data package is recognised by rebuilding it."""
    tmp = tmp_path_factory.mktemp("data-clone")
    repo, env = teammate(wine_release, tmp, None)
    yield repo, env, tmp
    pipeline(repo, env, "index-stop", check=False)


def test_a_release_with_the_same_data_pins_the_published_data_package(data_clone, wine_release):
    repo, env, _ = data_clone
    out = make(repo, "release", env, f"DATA_FILE={wine_release.csv}", "DATA=wine", "BUMP=patch").stdout
    assert "released mymodel 1.1.2+wine" in out
    # no record of the data package here: it is rebuilt from the file and compared, then recorded
    assert "data: unchanged, mymodel-data==1.0.0+wine" in out and "rebuilt byte for byte" in out
    assert "nothing to publish" in out
    assert data_wheels(env) == [DATA_WHEEL.format("1.0.0+wine")]
    served = Path(env["INDEX_DIR"]) / DATA_WHEEL.format("1.0.0+wine")
    assert model_metadata(repo / "dist/mymodel-1.1.2+wine-py3-none-any.whl")["data"]["package"]["sha256"] == sha256(served)
    assert f"--hash=sha256:{sha256(served)}" in (repo / "releases/mymodel-data-1.0.0+wine.txt").read_text()

    # recorded now: the next release with these bytes pins it without building anything
    again = make(repo, "release", env, f"DATA_FILE={wine_release.csv}", "DATA=wine").stdout
    assert "mymodel 1.1.2+wine is up to date" in again and "==> data" not in again


def test_a_column_added_bumps_the_data_package_minor(data_clone, wine_release):
    repo, env, tmp = data_clone
    csv = changed_data(wine_release.frame, tmp / "wine-batch.csv", lambda frame: frame.assign(batch="b1"))
    out = make(repo, "release", env, f"DATA_FILE={csv}", "DATA=wine").stdout
    assert "data: column 'batch' added against 1.0.0+wine (minor) -> publishes mymodel-data==1.1.0+wine" in out
    assert "released mymodel 1.1.3+wine" in out
    assert data_wheels(env) == [DATA_WHEEL.format(v) for v in ("1.0.0+wine", "1.1.0+wine")]
    assert (repo / "releases/mymodel-data-1.1.0+wine.txt").is_file()

    diff = make(repo, "diff", env, "A=1.1.2+wine", "B=1.1.3+wine").stdout
    assert (f"data package: mymodel-data==1.0.0+wine -> mymodel-data==1.1.0+wine "
            f"(http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel-data/)") in diff
    assert "data package.requirement" in diff and "data package.sha256" in diff  # under data: a patch
    # make channels reads every <package>-<name> project's wheels: the data package is none of them
    assert "no channels yet" in make(repo, "channels", env).stdout

    # make train from the published data package: the models pin it, trained on its bytes
    trained = make(repo, "train", env, "DATA=mymodel-data==1.1.0+wine").stdout
    assert "data: mymodel-data==1.1.0+wine from" in trained
    metadata = json.loads((repo / "src/mymodel/models/LogisticRegression/metadata.json").read_text())
    assert metadata["data"]["sha256"] == frame_sha256(csv) and metadata["data"]["source"] == csv.name
    assert metadata["data"]["package"]["requirement"] == "mymodel-data==1.1.0+wine"


def test_publish_false_keeps_the_data_off_the_index_and_verify_asks_for_it(data_clone, wine_release):
    repo, env, tmp = data_clone
    edit_config(repo, 'tag = "wine"', 'tag = "wine"\npublish = false')
    private = changed_data(wine_release.frame, tmp / "wine-private.csv",
                           lambda frame: frame.assign(alcohol=frame["alcohol"] + 0.01))
    out = make(repo, "release", env, f"DATA_FILE={private}", "DATA=wine").stdout
    assert "data: not published as mymodel-data ([dataset] publish = false)" in out
    assert "released mymodel 1.1.4+wine" in out
    assert data_wheels(env) == [DATA_WHEEL.format(v) for v in ("1.0.0+wine", "1.1.0+wine")]
    data = model_metadata(repo / "dist/mymodel-1.1.4+wine-py3-none-any.whl")["data"]
    assert "package" not in data and data["sha256"] == frame_sha256(private)

    # The published metadata names the private file, which is still here: verify never reads a path
    # from the index, only the clone's configured file (other data) or DATA_FILE.
    refused = make(repo, "verify", env, "VERSION=1.1.4+wine", check=False)
    assert_clean_error(refused, "make verify needs the data of 1.1.4+wine", "publish = false",
                       f"{wine_release.csv} ([dataset] source) holds other data", "DATA_FILE=")
    given = make(repo, "verify", env, "VERSION=1.1.4+wine", f"DATA_FILE={private}").stdout
    assert "reproducible: the rebuilt wheel is byte-identical" in given
    wrong = make(repo, "verify", env, "VERSION=1.1.4+wine", f"DATA_FILE={wine_release.csv}", check=False)
    assert_clean_error(wrong, f"the data read from {wine_release.csv} has sha256 {frame_sha256(wine_release.csv)}, "
                              f"1.1.4+wine was trained on {frame_sha256(private)}")


def test_a_data_package_the_clone_has_no_record_of_or_that_changed_is_refused(data_clone, wine_release, tmp_path):
    repo, env, _ = data_clone
    unrecorded = tmp_path / "unrecorded"
    run(["git", "clone", "-q", repo, unrecorded])
    assert_clean_error(make(unrecorded, "train", env, "DATA=mymodel-data==1.0.0+wine", check=False),
                       "this clone has no record of mymodel-data==1.0.0+wine", "releases/")
    # the same from the dataset.toml setting, for make train and make release
    edit_config(unrecorded, f'source = "{wine_release.csv}"', 'source = "mymodel-data==1.0.0+wine"', committed=False)
    for target in ("train", "release"):
        assert_clean_error(make(unrecorded, target, env, check=False),
                           "this clone has no record of mymodel-data==1.0.0+wine")

    # [dataset] source = "<package>-data==X": a release trains on a recorded data package and pins it
    edit_config(repo, f'source = "{wine_release.csv}"', 'source = "mymodel-data==1.1.0+wine"')
    out = make(repo, "release", env, "BUMP=patch").stdout
    assert "data: mymodel-data==1.1.0+wine ([dataset] source): pinned, nothing to publish" in out
    assert "released mymodel 1.1.5+wine" in out and len(data_wheels(env)) == 2
    assert model_metadata(repo / "dist/mymodel-1.1.5+wine-py3-none-any.whl")["data"]["package"]["requirement"] == \
        "mymodel-data==1.1.0+wine"

    wheel = Path(env["INDEX_DIR"]) / DATA_WHEEL.format("1.0.0+wine")
    with zipfile.ZipFile(wheel, "a") as archive:  # what an upload credential could put there
        archive.writestr("mymodel_data/evil.py", "raise SystemExit('ran')\n")
    assert_clean_error(make(repo, "train", env, "DATA=mymodel-data==1.0.0+wine", check=False),
                       "the index serves mymodel_data-1.0.0+wine-py3-none-any.whl with sha256",
                       "not the one releases/mymodel-data-1.0.0+wine.txt records")
    assert_clean_error(make(repo, "train", env, "DATA=mymodel-data==not-a-version", check=False),
                       "does not pin a version of mymodel-data")


def test_a_csv_data_package_from_before_parquet_trains_a_release_that_verify_rebuilds(data_clone, wine_release, tmp_path):
    """A data package published before the Parquet file: data.csv, whose sha256 metadata.json names. A release
    trains on it ([dataset] source = "mymodel-data==X"), pins it, and a clone without the data rebuilds the
    release from it byte for byte."""
    from pipeline.steps import data_wheel

    repo, env, _ = data_clone
    csv = wine_release.csv
    old = {"name": "mymodel-data", "file": "data.csv", "sha256": sha256(csv), "size": csv.stat().st_size,
           "rows": len(wine_release.frame), "columns": [{"name": str(c), "type": "float64"} for c in wine_release.frame],
           "source": str(csv), "target": "target", "tag": "wine", "version": "0.1.0+wine"}
    wheel = data_wheel.build_wheel(csv, old, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("mymodel_data/data.csv") == csv.read_bytes()  # the file as it was read, as before
    shutil.copy2(wheel, Path(env["INDEX_DIR"]) / wheel.name)
    (repo / "releases/mymodel-data-0.1.0+wine.txt").write_text(f"mymodel-data==0.1.0+wine \\\n    --hash=sha256:{sha256(wheel)}\n")
    edit_config(repo, 'source = "mymodel-data==1.1.0+wine"', 'source = "mymodel-data==0.1.0+wine"', committed=False)
    commit(repo, "train on the CSV data package")
    out = make(repo, "release", env).stdout
    assert "data: mymodel-data==0.1.0+wine ([dataset] source): pinned, nothing to publish" in out, out
    assert "released mymodel 1.1.6+wine" in out
    data = model_metadata(repo / "dist/mymodel-1.1.6+wine-py3-none-any.whl")["data"]
    assert data["package"]["requirement"] == "mymodel-data==0.1.0+wine" and data["sha256"] == frame_sha256(csv)

    clone = team_clone(repo, tmp_path / "clone")
    hidden = csv.with_name("wine.csv.hidden")
    csv.rename(hidden)
    try:
        verified = make(clone, "verify", env, "VERSION=1.1.6+wine").stdout
    finally:
        hidden.rename(csv)
    assert "data: mymodel-data==0.1.0+wine from" in verified
    assert "reproducible: the rebuilt wheel is byte-identical to the published one" in verified


def forged_data_wheel(frame, change, version: str, out: Path) -> Path:
    """A data wheel built as the pipeline builds one, of data nobody released: what anyone holding the upload
    credential can publish under any version."""
    from pipeline.steps.data import Data
    from pipeline.steps import frames, sources

    csv = changed_data(frame, out / f"forged-{version}.csv", change)
    read = sources.read_source(str(csv))
    data = Data(read, str(csv), frames.frame_sha256(read))
    path, facts = write_file(data, describe(data, "target", "wine"), out)
    return build_wheel(path, {**facts, "version": version}, out)


def test_a_forged_unrecorded_data_wheel_changes_neither_the_data_version_nor_its_bump(wine_release, tmp_path):
    """Issue 27.6: the next data version and its bump come from the data this clone recorded, never from a
    data wheel on the index that nobody here recorded, which is reported in one line and not followed."""
    # the models' record only: the data version 1.0.0+wine is this clone's through the models' pin
    repo, env = teammate(wine_release, tmp_path, "mymodel-1*.txt")
    frame = wine_release.frame
    pipeline(repo, env, "index")
    try:
        # a column more (which the old numbering read as "column 'pclass' removed", a minor: 2.1.0)
        upload(env, forged_data_wheel(frame, lambda f: f.assign(pclass=1), "2.0.0+wine", tmp_path))
        one_value = changed_data(frame, tmp_path / "one-value.csv", lambda f: f.assign(
            alcohol=f["alcohol"].where(f.index != 0, f["alcohol"] + 0.01)))
        out = make(repo, "release", env, f"DATA_FILE={one_value}", "DATA=wine").stdout
        assert "data: new data, same columns as 1.0.0+wine (patch) -> publishes mymodel-data==1.0.1+wine" in out
        assert ("data: mymodel-data 2.0.0+wine on the index: no record of it in this clone (releases/, HEAD's git "
                "history, a recorded model's pin), so not followed") in out
        assert "released mymodel 1.1.2+wine" in out

        # a forged wheel (other data) that already has the column cannot hide a real column change as a patch
        upload(env, forged_data_wheel(frame, lambda f: f.assign(batch="forged"), "3.0.0+wine", tmp_path))
        batch = changed_data(frame, tmp_path / "batch.csv", lambda f: f.assign(batch="b1"))
        out = make(repo, "release", env, f"DATA_FILE={batch}", "DATA=wine").stdout
        assert "data: column 'batch' added against 1.0.1+wine (minor) -> publishes mymodel-data==1.1.0+wine" in out
        assert "data: mymodel-data 3.0.0+wine, 2.0.0+wine on the index: no record of them in this clone" in out
        assert data_wheels(env) == [DATA_WHEEL.format(v) for v in ("1.0.0+wine", "1.0.1+wine", "1.1.0+wine",
                                                                    "2.0.0+wine", "3.0.0+wine")]
    finally:
        pipeline(repo, env, "index-stop", check=False)
