"""The one validating reader of a published wheel's JSON files (mymodel.published), and its two
users: the registry page's facts (never raises) and the pipeline's snapshot (UnreadableRelease)."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest

from index.registry.facts import FactsCache, read_wheel
from mymodel.errors import MalformedBuild
from mymodel.published import MAX_DEPTH, check_build, parse, read_build
from pipeline.views import registry
from pipeline.errors import UnreadableRelease
from tests.registry_wheels import model_metadata, release_files

VALID = model_metadata("SVC", 0.82)


def metadata_with(path: str, value) -> bytes:
    """VALID with the field at dotted ``path`` set to ``value``, as the bytes of a metadata.json."""
    document = json.loads(json.dumps(VALID))
    *parents, last = path.split(".")
    target = document
    for key in parents:
        target = target[key]
    target[last] = value
    return json.dumps(document).encode()


def read_one(raw: bytes, manifest: bytes = b'{"files": {}}') -> tuple[dict, dict]:
    members = {"mymodel/models/manifest.json": manifest, "mymodel/models/SVC/metadata.json": raw}
    return read_build(members, members.__getitem__)


@pytest.mark.parametrize("raw, reason", [
    (metadata_with("metrics", None), "SVC/metadata.json: metrics is null, not an object"),
    (metadata_with("metrics.accuracy", "0.8"), 'SVC/metadata.json: metrics.accuracy is "0.8", not a number'),
    (metadata_with("metrics.accuracy", True), "metrics.accuracy is true, not a number"),
    (metadata_with("data.rows", "many"), 'data.rows is "many", not a number'),
    (metadata_with("data.split", [0, 0.25]), "data.split is a list, not an object"),
    (metadata_with("data.split.seed", -1), "data.split.seed is -1, not a whole number of 0 or more"),
    (metadata_with("input_schema.columns", {"age": "float64"}), "input_schema.columns is an object, not a list"),
    (metadata_with("input_schema.columns", [{"dtype": "float64"}]), "input_schema.columns[0].name is missing"),
    (metadata_with("input_schema.columns", ["age"]), 'input_schema.columns[0] is "age", not an object'),
    (metadata_with("classes", "01"), 'classes is "01", not a list'),
    (metadata_with("training_environment", None), "training_environment is null, not an object"),
    (metadata_with("git.dirty", "no"), 'git.dirty is "no", not true or false'),
    (metadata_with("per_class", {"1": {"precision": "high"}}), 'per_class.1.precision is "high", not a number'),
    (metadata_with("per_class", {"1": {"support": 2.5}}), "per_class.1.support is 2.5, not a whole number of 0 or more"),
    (metadata_with("per_class", ["1"]), "per_class is a list, not an object"),
    (metadata_with("fit", {"function": 3}), "fit.function is 3, not a string"),
    (metadata_with("fit", {"recorded": {"best_iteration": [87]}}), "fit.recorded.best_iteration is a list, not a number"),
    (b"[1, 2]", "SVC/metadata.json: the document is a list, not an object"),
    (b"null", "the document is null, not an object"),
    (b'"text"', 'the document is "text", not an object'),
    (b"{", "SVC/metadata.json: not JSON"),
    (b"\xff\xfe\xfa", "SVC/metadata.json: not JSON"),
    (b"", "SVC/metadata.json: not JSON"),
])
def test_malformed_metadata_names_the_file_and_the_field(raw, reason):
    with pytest.raises(MalformedBuild) as raised:
        read_one(raw)
    assert reason in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("raw, reason", [
    (b'{"metrics": {"accuracy": 1e999}}', "metrics.accuracy is Infinity, not a finite number"),
    (b'{"metrics": {"accuracy": -Infinity}}', "metrics.accuracy is -Infinity, not a finite number"),
    (b'{"metrics": {"accuracy": NaN}}', "metrics.accuracy is NaN, not a finite number"),
    (b'{"metrics": {"rmse": 1e300}}', "metrics.rmse is 1e+300, not a number within ±1e+15"),
    (b'{"data": {"rows": 1' + b"0" * 400 + b"}}", "data.rows is a 401-digit number, not a number within ±1e+15"),
    (b'{"data": {"rows": 1' + b"0" * 5000 + b"}}", "SVC/metadata.json: not JSON (Exceeds the limit"),
])
def test_numbers_that_no_build_writes_are_refused(raw, reason):
    with pytest.raises(MalformedBuild) as raised:
        read_one(raw)
    assert reason in str(raised.value)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused_without_exhausting_the_stack(depth):
    with pytest.raises(MalformedBuild, match=f"nested deeper than {MAX_DEPTH} levels"):
        read_one(b'{"params": {"x": ' + b"[" * depth + b"]" * depth + b"}}")


@pytest.mark.parametrize("manifest, reason", [
    (b"[]", "manifest.json: the document is a list, not an object"),
    (b'{"files": null}', "manifest.json: files is null, not an object"),
    (b'{"files": {"SVC/model.joblib": 7}}', "files.SVC/model.joblib is 7, not a string"),
    (b'{"files": {"SVC/model.joblib": "abc"}}', 'files.SVC/model.joblib is "abc", not a sha256 (64 hex digits)'),
    (b'{"release": "patch"}', 'release is "patch", not an object'),
    (b'{"release": {"bump": {"reasons": "why"}}}', 'release.bump.reasons is "why", not a list'),
    (b'{"release": {"bump": {"reasons": [1]}}}', "release.bump.reasons[0] is 1, not a string"),
])
def test_a_malformed_manifest_is_named(manifest, reason):
    with pytest.raises(MalformedBuild) as raised:
        read_one(json.dumps(VALID).encode(), manifest)
    assert reason in str(raised.value)


def test_what_a_build_writes_is_read_as_it_is_and_unknown_fields_are_kept():
    metadata = {**VALID, "task": "classification", "target_units": None, "preprocessing": {"any": ["thing", 1]}}
    manifest = {"version": "1.1.1+titanic", "data_tag": "titanic", "requires": {"numpy": ">=2"},
                "files": {"SVC/model.joblib": "ab" * 32}, "release": {"bump": {"part": "patch", "reasons": []},
                                                                      "gate_overridden": {"models": ["SVC"]}}}
    members = {"mymodel/models/manifest.json": json.dumps(manifest).encode(),
               "mymodel/models/SVC/metadata.json": json.dumps(metadata).encode(),
               "mymodel/models/metrics.json": b"not read", "mymodel/models/SVC/extra/metadata.json": b"not read"}
    assert read_build(members, members.__getitem__) == (manifest, {"SVC": metadata})


def test_missing_files_give_what_is_there():
    assert read_build([], {}.__getitem__) == ({}, {})  # no manifest, no models: not built by a pipeline
    members = {"mymodel/models/SVC/metadata.json": json.dumps(VALID).encode()}
    assert read_build(members, members.__getitem__) == ({}, {"SVC": VALID})
    with pytest.raises(MalformedBuild, match=r"^manifest.json: cannot be read from the archive \('mymodel/models/"):
        read_build(["mymodel/models/manifest.json"], {}.__getitem__)  # listed, but not in the archive


def test_a_damaged_member_is_named():
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mymodel/models/SVC/metadata.json", json.dumps(VALID) * 50)
    damaged = bytearray(wheel.getvalue())
    start = damaged.index(b"metadata.json") + len(b"metadata.json")
    damaged[start + 10:start + 60] = b"\xff" * 50  # inside the deflate stream
    with zipfile.ZipFile(io.BytesIO(bytes(damaged))) as archive:
        with pytest.raises(MalformedBuild, match="^SVC/metadata.json: cannot be read from the archive"):
            read_build(archive.namelist(), archive.read)


def test_a_copy_kept_by_an_earlier_reader_is_checked_again():
    check_build({"release": {}}, {"SVC": VALID})
    with pytest.raises(MalformedBuild, match="SVC/metadata.json: metrics is null"):
        check_build({}, {"SVC": {**VALID, "metrics": None}})
    with pytest.raises(MalformedBuild, match="the models are a list"):
        check_build({}, [])
    assert parse(b'{"a": 1}', "x.json") == {"a": 1}


# The two users ------------------------------------------------------------------------------------------


def malformed_wheel(tmp_path: Path, member: str = "mymodel/models/SVC/metadata.json",
                    content: bytes = metadata_with("metrics", None)) -> Path:
    """A valid test release's wheel with ``member`` replaced by ``content``."""
    wheel, _ = release_files(tmp_path / "release", "1.5.0+titanic", {"LogisticRegression": 0.8, "SVC": 0.82})
    changed = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(changed, "w") as target:
        for item in source.infolist():
            target.writestr(item, content if item.filename == member else source.read(item))
    return changed


def test_the_registry_facts_of_a_malformed_wheel_say_why_and_hold_no_models(tmp_path):
    facts = read_wheel(malformed_wheel(tmp_path), "mymodel")
    assert facts.problem == "SVC/metadata.json: metrics is null, not an object"
    assert facts.models == {} and facts.manifest == {} and facts.model_sha256 == {}
    assert read_wheel(malformed_wheel(tmp_path / "ok", content=json.dumps(VALID).encode()), "mymodel").problem == ""


def test_registry_facts_kept_by_an_earlier_reader_are_read_again_from_the_wheel(tmp_path):
    wheel = malformed_wheel(tmp_path)
    folder = tmp_path / "kept"
    folder.mkdir()
    # what the reader before this one kept for this wheel: the null metrics as they were
    kept = {"manifest": {}, "models": {"SVC": {**VALID, "metrics": None}}, "card": "", "summary": ""}
    (folder / "f00d.json").write_text(json.dumps(kept))
    facts = FactsCache(folder, "mymodel").of(wheel, "f00d")
    assert facts.problem.startswith("SVC/metadata.json: metrics is null") and facts.models == {}
    assert json.loads((folder / "f00d.json").read_text())["problem"] == facts.problem


def test_the_pipeline_names_the_version_and_the_reason(tmp_path):
    with pytest.raises(MalformedBuild, match="^SVC/metadata.json: metrics is null, not an object$"):
        registry._read_wheel(malformed_wheel(tmp_path), "1.5.0+titanic")
    not_a_zip = tmp_path / "not-a-zip.whl"
    not_a_zip.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(MalformedBuild, match=r"^not a readable wheel \("):
        registry._read_wheel(not_a_zip, "1.5.0+titanic")
    with zipfile.ZipFile(malformed_wheel(tmp_path / "again")) as wheel, pytest.raises(UnreadableRelease) as raised:
        registry.wheel_json(wheel, "1.5.0+titanic")  # the gate's and make verify's reader
    assert raised.value.problem == ("the wheel of 1.5.0+titanic on the index cannot be read "
                                    "(SVC/metadata.json: metrics is null, not an object)")


def test_a_kept_snapshot_from_an_earlier_reader_is_not_trusted(tmp_path):
    entry = registry.Published(registry.Snapshot("1.5.0+titanic", {"SVC": {**VALID, "metrics": None}}, {}, {}),
                               "w.whl", "f00d", 1, None)
    registry._write_cache(tmp_path, entry)
    assert registry._read_cache(tmp_path, "f00d") is None  # read the wheel again, through the reader
    fine = registry.Published(registry.Snapshot("1.5.0+titanic", {"SVC": VALID}, {}, {}), "w.whl", "beef", 1, None)
    registry._write_cache(tmp_path, fine)
    assert asdict(registry._read_cache(tmp_path, "beef")) == asdict(fine)


def test_make_versions_shows_an_unreadable_version_with_its_reason():
    rows = [{"version": "1.5.0+titanic", "yanked": "bad json", "unreadable": "SVC/metadata.json: metrics is null",
             "data_tag": "titanic", "uploaded": None, "wheel_size": 2000, "metric": "accuracy", "scores": {}, "score_metrics": {}, "bump": None},
            {"version": "1.1.1+titanic", "yanked": None, "unreadable": None, "data_tag": "titanic", "uploaded": None,
             "wheel_size": 2000, "metric": "accuracy", "scores": {"SVC": 0.82}, "score_metrics": {"SVC": "accuracy"},
             "bump": None}]
    table = registry.versions_table(rows)
    assert "yanked: bad json; unreadable: SVC/metadata.json: metrics is null" in table
    assert "0.8200" in table
