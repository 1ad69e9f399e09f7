"""dataset.toml's keys declared once (pipeline/dataset_keys.py): the examples the reference shows load,
the declared defaults are the reader's, and values outside a key's range are refused naming the key."""

from __future__ import annotations

import re
import tomllib

import pytest

from pipeline import dataset_keys
from pipeline.config import load_dataset_config
from pipeline.errors import ConfigError


def example_config() -> str:
    """A dataset.toml made of every declared key's example (the model table's with one estimator)."""
    tables: dict[str, list[str]] = {}
    for key in dataset_keys.KEYS:
        if key.table == dataset_keys.MODELS:
            continue
        tables.setdefault(key.table, []).append(key.example)
    tables["dataset"] = [line for line in tables["dataset"] if not line.startswith("source")]
    tables["dataset"].append('source = "openml-titanic"')
    text = "".join(f"[{table}]\n" + "\n".join(lines) + "\n\n" for table, lines in tables.items())
    return text.replace('task = "regression"', 'task = "classification"').replace(
        'target_units = "progression points"\n', "").replace("max_increase = 1.0\n", "").replace(
        "max_accuracy_drop = 0.01\n", "").replace("max_drop = 0.02\n", "max_drop = 0.02\n").replace(
        'lower_is_better = ["metrics:cost"]\n', "") + \
        '[models.Forest]\nestimator = "RandomForestClassifier"\ncalibrated = true\n'


def test_the_examples_of_the_reference_are_what_the_reader_accepts(tmp_path):
    path = tmp_path / "dataset.toml"
    text = example_config()
    path.write_text(text)
    parsed = tomllib.loads(text)
    config = load_dataset_config(path)
    assert (config.test_size, config.seed, config.cv_folds) == (0.2, 42, 10)
    assert (config.gate.metric, config.gate.allowed) == ("f1", 0.02)
    assert (config.onnx, config.onnx_tolerance, config.publish_data) == ("required", 1e-4, False)
    assert config.numeric_features == tuple(parsed["dataset"]["numeric_features"])
    assert config.models[0].calibrated and config.models[0].estimator == "RandomForestClassifier"
    assert [metric.name for metric in config.metrics] == parsed["evaluation"]["metrics"]


def test_the_declared_defaults_are_the_readers(tmp_path):
    path = tmp_path / "dataset.toml"
    path.write_text('[dataset]\nsource = "openml-titanic"\ntag = "titanic"\ntarget = "survived"\n'
                    'numeric_features = ["age"]\n')
    config = load_dataset_config(path)
    for table, name, value in (("training", "test_size", config.test_size), ("training", "seed", config.seed),
                               ("training", "cv_folds", config.cv_folds), ("dataset", "task", config.task),
                               ("dataset", "publish", config.publish_data), ("release", "onnx", config.onnx),
                               ("release", "max_drop", config.gate.allowed), ("evaluation", "metrics", config.metrics)):
        assert dataset_keys.key(table, name).default == value, (table, name)


@pytest.mark.parametrize(("line", "message"), [
    ("test_size = 1.5", "[training] test_size = 1.5 must be a share of the rows, above 0 and below 1"),
    ("test_size = 0", "[training] test_size = 0.0 must be a share of the rows"),
    ("cv_folds = 1", "[training] cv_folds = 1 must be 2 or more"),
])
def test_training_values_outside_their_range_are_refused_naming_the_key(tmp_path, line, message):
    path = tmp_path / "dataset.toml"
    path.write_text(f'[dataset]\nsource = "openml-titanic"\ntag = "titanic"\ntarget = "survived"\n[training]\n{line}\n')
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_dataset_config(path)


def test_a_key_the_reader_would_read_must_be_declared():
    with pytest.raises(KeyError):
        dataset_keys.setting({}, "dataset", "undeclared")
