"""Release work keyed on digests (pipeline/steps/train_cache.py, onnx_export's cache): a model's key follows
its own table and what all models share, a conversion's key its pickle, rows and settings; what the cache
gives back is what training and conversion wrote, and a damaged entry is done again."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import shutil

import pytest

from pipeline.cache import Cache
from pipeline.config import DEFAULT_MODELS, load_dataset_config
from pipeline.steps import onnx_export
from pipeline.steps.data import load_dataset
from pipeline.steps.data_input import DataInput, fingerprint
from pipeline.steps.model_files import METADATA_FILE, save
from pipeline.steps.train import make_pipeline, split
from pipeline.steps.train_cache import Reuse, model_keys

TITANIC = load_dataset_config()
NAMES = [spec.name for spec in DEFAULT_MODELS]
LOGISTIC, FOREST = DEFAULT_MODELS[0], DEFAULT_MODELS[1]


@pytest.fixture(scope="module")
def titanic():
    """The default Titanic split: X_train, X_test, y_train, y_test."""
    return split(load_dataset(TITANIC), TITANIC)


def fitted(spec, X, y):
    return make_pipeline(spec.build(TITANIC.seed), TITANIC).fit(X, y)


def quiet(_line: str) -> None:
    pass


def test_a_models_key_follows_its_own_table_and_what_all_models_share():
    data = DataInput(None, TITANIC.source, "a" * 64)
    keys = model_keys(TITANIC, data)
    assert len(set(keys.values())) == 3
    edited = dataclasses.replace(TITANIC, models=(dataclasses.replace(LOGISTIC, params={"max_iter": 1000, "C": 0.5}),
                                                  *DEFAULT_MODELS[1:]))
    assert [model_keys(edited, data)[name] == keys[name] for name in NAMES] == [False, True, True]
    assert model_keys(dataclasses.replace(TITANIC, models=DEFAULT_MODELS[1:]), data)[FOREST.name] == keys[FOREST.name]
    for shared in (dataclasses.replace(TITANIC, seed=1), dataclasses.replace(TITANIC, tag="titanic.2"),
                   dataclasses.replace(TITANIC, test_size=0.3), dataclasses.replace(TITANIC, onnx_tolerance=1e-3)):
        assert all(model_keys(shared, data)[name] != keys[name] for name in NAMES), shared
    for other in (dataclasses.replace(data, sha256="b" * 64), dataclasses.replace(data, source="titanic.csv")):
        assert all(model_keys(TITANIC, other)[name] != keys[name] for name in NAMES), other


def test_the_conversion_key_follows_the_pickle_the_rows_and_the_settings(titanic):
    X_train, X_test, y_train, _ = titanic

    def key(pipeline, name=LOGISTIC.name, rows=X_test, tolerance=None):
        return onnx_export.conversion_key(name, pipeline, rows, TITANIC.task, TITANIC.numeric_features, tolerance)

    first = fitted(LOGISTIC, X_train, y_train)
    assert key(fitted(LOGISTIC, X_train, y_train)) == key(first)  # the same fit: the same pickle
    other = dataclasses.replace(LOGISTIC, params={"max_iter": 1000, "C": 0.5})
    assert key(fitted(other, X_train, y_train)) != key(first)
    assert key(first, rows=X_test.iloc[1:]) != key(first)
    assert key(first, tolerance=1e-3) != key(first)
    assert key(first, name="Other") != key(first)  # the graph's name is in the bytes


def test_a_conversion_comes_from_the_cache_and_is_done_again_when_its_file_is_damaged(titanic, tmp_path):
    X_train, X_test, y_train, _ = titanic
    models = {LOGISTIC.name: fitted(LOGISTIC, X_train, y_train)}
    cache = Cache(tmp_path / "cache")

    def exported(out=quiet):
        return onnx_export.exported_all(models, X_test, TITANIC.task, TITANIC.numeric_features, "optional", out=out,
                                        cache=cache)[LOGISTIC.name]

    first = exported()
    key = onnx_export.conversion_key(LOGISTIC.name, models[LOGISTIC.name], X_test, TITANIC.task,
                                     TITANIC.numeric_features, None)
    entry = cache.get("onnx", key)
    assert entry.document == {"record": first.record} and entry.read(onnx_export.ONNX_FILE) == first.model
    marked = {**first.record, "max_difference": 0.5}  # what an earlier run would have found
    cache.put("onnx", key, {"record": marked}, {onnx_export.ONNX_FILE: first.model})
    printed = []
    assert exported(printed.append) == onnx_export.Exported(marked, first.model)
    assert printed == [f"{onnx_export.Exported(marked).describe(LOGISTIC.name)} {onnx_export.FROM_CACHE}"]
    entry.files[onnx_export.ONNX_FILE].write_bytes(b"damaged")
    assert exported() == first  # converted and checked again


def test_models_from_the_cache_save_the_files_training_saved(tmp_path):
    """Train and save with a cache, then take every model from it: the same models folder, the commit aside."""
    config = dataclasses.replace(TITANIC, models=(LOGISTIC, dataclasses.replace(FOREST, params={"n_estimators": 10})))
    names = [LOGISTIC.name, FOREST.name]
    cache = Cache(tmp_path / "cache")
    data = fingerprint(config)
    first = Reuse.look_up(cache, config, data)
    assert first.hits == {} and [spec.name for spec in first.to_train(config)] == names
    models = first.train(data, config, out=quiet)
    trained_dir = save(models, tmp_path / "trained")
    first.remember(models, trained_dir)

    again = Reuse.look_up(cache, config, data)
    assert sorted(again.hits) == sorted(names) and again.to_train(config) == ()
    shutil.rmtree(cache.root / "files")  # another run's pruning, or rm -rf .cache, while this one goes on
    printed = []
    cached_dir = save(again.train(data, config, out=printed.append), tmp_path / "cached")
    assert sum(line.startswith("trained before: ") for line in printed) == 2
    comparison = filecmp.dircmp(trained_dir, cached_dir)
    assert comparison.left_only == comparison.right_only == []
    for name in names:
        (same, different, _) = filecmp.cmpfiles(trained_dir / name, cached_dir / name, ["model.joblib", "model.onnx"],
                                                 shallow=False)
        assert different == [] and len(same) == 2
        trained, cached = (json.loads((folder / name / METADATA_FILE).read_text()) for folder in (trained_dir, cached_dir))
        assert {k: v for k, v in trained.items() if k != "git"} == {k: v for k, v in cached.items() if k != "git"}

