"""The data package's wheel, facts and numbering (pipeline/steps/data_wheel.py, data_package.py), without an index."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import threading
import zipfile
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pandas as pd
import pytest

from index import credentials, uploads
from index.registry import views
from index.server import make_app
from pipeline.config import INDEX_READER, INDEX_USER, IndexSettings, load_dataset_config
from pipeline.indexes.pypiserver import PypiserverClient
from pipeline.steps import data_package, data_wheel, frames
from pipeline.steps.data import Data
from pipeline.steps.data_package import PublishedData
from pipeline.steps.data_wheel import column_change
from pipeline.errors import ConfigError, DataError

FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.5], "b": ["x", "y", None, "z"], "label": ["yes", "no", "yes", "no"]})


def facts(tmp_path, frame: pd.DataFrame = FRAME) -> tuple:
    """The data package's file and metadata (without a version) of ``frame``."""
    frame = frames.normalised(frame, "data/train.parquet")
    data = Data(frame, "data/train.parquet", frames.frame_sha256(frame))
    return data_wheel.write_file(data, data_wheel.describe(data, "label", "tag"), tmp_path)


def test_the_facts_are_the_frames_its_sha256_the_one_the_models_record(tmp_path):
    path, described = facts(tmp_path)
    assert described["rows"] == 4 and described["size"] == path.stat().st_size
    assert described["sha256"] == frames.frame_sha256(frames.normalised(FRAME, "x"))
    assert described["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() != described["sha256"]
    assert [(c["name"], c["type"]) for c in described["columns"]] == [("a", "float64"), ("b", "str"), ("label", "str")]
    assert (described["file"], described["format"], described["hash"]) == ("data.parquet", "parquet", "canonical-frame-v1")
    # the file's name only: where the release machine keeps it is never published
    assert (described["source"], described["target"], described["tag"]) == ("train.parquet", "label", "tag")


def test_the_wheel_is_the_same_bytes_on_every_build_and_its_record_holds(tmp_path):
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    path, described = facts(tmp_path / "one")
    again, _ = facts(tmp_path / "two")
    metadata = {**described, "version": "1.0.0+tag"}
    first = data_wheel.build_wheel(path, metadata, tmp_path / "one")
    second = data_wheel.build_wheel(again, metadata, tmp_path / "two")
    assert first.name == "mymodel_data-1.0.0+tag-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as wheel:
        names = wheel.namelist()
        assert sorted(names) == sorted(["mymodel_data/__init__.py", "mymodel_data/metadata.json",
                                        "mymodel_data/data.parquet",
                                        *(f"mymodel_data-1.0.0+tag.dist-info/{f}" for f in ("METADATA", "WHEEL", "RECORD"))])
        for line in wheel.read("mymodel_data-1.0.0+tag.dist-info/RECORD").decode().splitlines()[:-1]:
            name, digest, size = line.split(",")
            content = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(content))
        card = wheel.read("mymodel_data-1.0.0+tag.dist-info/METADATA").decode()
        assert "Name: mymodel-data\nVersion: 1.0.0+tag\n" in card
        assert "Requires-Dist: pandas>=3\nRequires-Dist: pyarrow>=17\n" in card
        assert json.loads(wheel.read("mymodel_data/metadata.json")) == metadata
        assert wheel.read("mymodel_data/data.parquet") == path.read_bytes()


def test_a_file_that_changes_while_it_is_packaged_is_refused(tmp_path):
    path, described = facts(tmp_path)
    frames.write_parquet(FRAME.iloc[:2], path)
    with pytest.raises(DataError, match="changed while the data package was built"):
        data_wheel.build_wheel(path, {**described, "version": "1.0.0+tag"}, tmp_path)


def test_a_data_package_from_before_parquet_names_its_csv_file_and_its_sha256():
    before = {"sha256": "c" * 64, "size": 10}  # metadata.json of a CSV data package: no file, no file_sha256
    assert data_wheel.data_member(before) == "data.csv" and data_wheel.file_sha256(before) == "c" * 64
    assert data_wheel.data_member({"file": "../../etc/passwd"}) is None


def published(version: str, columns: list[tuple[str, str]] | None) -> PublishedData:
    metadata = None if columns is None else {"columns": [{"name": n, "type": t} for n, t in columns]}
    return PublishedData(version, metadata, None)


@pytest.mark.parametrize("on_index, columns, expected", [
    ([], [("a", "int64")], ("1.0.0+wine", "first data package")),
    ([published("1.0.0+wine", [("a", "int64")])], [("a", "int64")],
     ("1.0.1+wine", "new data, same columns as 1.0.0+wine (patch)")),
    ([published("1.0.0+wine", [("a", "int64")])], [("a", "int64"), ("b", "str")],
     ("1.1.0+wine", "column 'b' added against 1.0.0+wine (minor)")),
    ([published("1.0.0+wine", [("a", "int64"), ("b", "str")])], [("a", "int64")],
     ("1.1.0+wine", "column 'b' removed against 1.0.0+wine (minor)")),
    # numbered above every version on the index, compared with the highest readable one
    ([published("1.2.3+old", None), published("1.0.0+wine", [("a", "int64")])], [("a", "float64")],
     ("1.3.0+wine", "column 'a' retyped int64 -> float64 against 1.0.0+wine (minor)")),
])
def test_the_data_version_follows_the_data(on_index, columns, expected):
    new = {"columns": [{"name": n, "type": t} for n, t in columns]}
    assert data_package._next_version(on_index, new, "wine") == expected


@pytest.mark.parametrize("taken, columns, expected", [
    # an unrecorded 2.0.0+wine (another column) on the index: neither the number nor the bump follows it
    ({"1.0.0+wine", "2.0.0+wine"}, [("a", "int64")], ("1.0.1+wine", "new data, same columns as 1.0.0+wine (patch)")),
    ({"1.0.0+wine", "1.0.1+wine", "1.0.2+wine"}, [("a", "int64")],
     ("1.0.3+wine", "new data, same columns as 1.0.0+wine (patch) (1.0.1+wine, 1.0.2+wine are taken on the index)")),
    ({"1.0.0+wine", "1.1.0+wine"}, [("a", "int64"), ("b", "str")],
     ("1.2.0+wine", "column 'b' added against 1.0.0+wine (minor) (1.1.0+wine is taken on the index)")),
])
def test_the_data_version_steps_over_numbers_taken_by_data_this_clone_did_not_record(taken, columns, expected):
    new = {"columns": [{"name": n, "type": t} for n, t in columns]}
    assert data_package._next_version([published("1.0.0+wine", [("a", "int64")])], new, "wine", taken) == expected


@contextlib.contextmanager
def served_index(tmp_path):
    """The index's real WSGI app (index/server.py's make_app, records in a state folder) on a free loopback
    port in a thread, and a pipeline client of it with the upload credential."""
    state, packages = tmp_path / "state", tmp_path / "packages"
    credentials.ensure(state, INDEX_USER, INDEX_READER)
    app = make_app(packages, state / credentials.HTPASSWD_FILE, state_dir=state)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, PypiserverClient(IndexSettings("127.0.0.1", server.server_port, packages, state, None, None))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_data_number_the_index_burned_is_stepped_over(tmp_path):
    """Before: a data version removed through the index (its number burned: any upload of it refused, 409) was
    planned again, so every later release failed at its data upload. Numbered past it, and said why."""
    path, described = facts(tmp_path)
    with served_index(tmp_path) as (app, client):
        for version in ("1.0.0+wine", "1.0.1+wine"):
            (tmp_path / version).mkdir()
            wheel = data_wheel.build_wheel(path, {**described, "version": version}, tmp_path / version)
            with open(wheel, "rb") as stream:  # what pypiserver's upload handler does with an upload it accepted
                app._pypiserver_config.backend.add_package(wheel.name, stream)
        client.remove_version("1.0.1+wine", "mymodel-data")  # through the index: 1.0.1+wine is burned
        assert client.versions("mymodel-data") == ["1.0.0+wine"]
        assert data_package.used_numbers(client) == {"1.0.1+wine"}
        config = dataclasses.replace(load_dataset_config(), source="data/train.parquet", tag="wine", target="label",
                                     publish_data=True)
        grown = frames.normalised(pd.concat([FRAME, FRAME.iloc[[0]]], ignore_index=True), "data/train.parquet")
        # new data, same columns
        data = Data(grown, "data/train.parquet", frames.frame_sha256(grown))
        planned = data_package.plan(client, config, data.source, data.sha256, lambda: data)
    assert planned.new and planned.version == "1.0.2+wine", planned.note
    assert "1.0.0+wine, 1.0.1+wine are taken on the index" in planned.note


@pytest.mark.parametrize("published_columns", [None, 3, [["a"]], [{"name": ["a"]}], [{"type": "int64"}]])
def test_a_published_data_package_of_any_shape_is_compared_without_failing(published_columns):
    assert column_change({"columns": published_columns}, {"columns": [{"name": "a", "type": "int64"}]}) == \
        "column 'a' added"


def test_column_order_alone_is_no_column_change():
    old = {"columns": [{"name": "a", "type": "int64"}, {"name": "b", "type": "str"}]}
    assert column_change(old, {"columns": list(reversed(old["columns"]))}) is None


@pytest.mark.parametrize("text, expected", [("mymodel-data==1.0.1+wine", "1.0.1+wine"), ("MyModel_Data == 1.0", "1.0"),
                                            ("wine", None), ("other-data==1.0", None), (None, None)])
def test_a_data_requirement_is_told_from_a_tag_or_a_path(text, expected):
    assert data_wheel.parse_requirement(text) == expected


def test_the_index_takes_one_data_wheel_per_version_and_no_sdist():
    slot = uploads.slot("mymodel_data-1.0.0+wine-py3-none-any.whl")
    assert (slot.project, str(slot.version), slot.kind) == ("mymodel-data", "1.0.0+wine", uploads.WHEEL)
    with pytest.raises(uploads.UploadRefused) as refused:
        uploads.check_room(slot, ["mymodel_data-1.0.0+wine-py3-none-any.whl"])
    assert refused.value.status == 409
    with pytest.raises(uploads.UploadRefused, match="takes only a wheel per version"):
        uploads.slot("mymodel_data-1.0.0+wine.tar.gz")


def test_the_version_page_shows_the_pinned_data_package_escaped():
    pinned = {"name": "mymodel-data", "requirement": "mymodel-data==1.0.0+wine<script>", "sha256": "ab" * 32,
              "rows": 178, "columns": 14, "size": 3 << 20}
    html = views._lineage_html({"data": {"package": pinned}}, root="../../../")
    assert '<a href="../../../simple/mymodel-data/">mymodel-data==1.0.0+wine&lt;script&gt;</a>' in html
    assert "178 rows, 14 columns, 3.0 MiB" in html and "<script>" not in html
    assert "data package" not in views._lineage_html({"data": {"package": "not an object"}})


def test_publish_must_be_true_or_false(tmp_path):
    from pipeline.config import DATASET_CONFIG, load_dataset_config

    config = tmp_path / "dataset.toml"
    text = DATASET_CONFIG.read_text()
    config.write_text(text.replace('tag = "titanic"', 'tag = "titanic"\npublish = false'))
    assert load_dataset_config(config).publish_data is False
    assert load_dataset_config(DATASET_CONFIG).publish_data is True
    config.write_text(text.replace('tag = "titanic"', 'tag = "titanic"\npublish = "no"'))
    with pytest.raises(ConfigError, match=r"\[dataset\] publish = 'no' must be true or false"):
        load_dataset_config(config)
