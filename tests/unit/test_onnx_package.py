"""The -onnx distribution's build decisions, without building: which models ship, what it requires,
what its card says, and the names it reserves."""

from __future__ import annotations

import json

import pytest

from pipeline.package import onnx_names
from pipeline.steps import onnx_package


def models(tmp_path, records: dict[str, dict | None]) -> dict[str, dict]:
    metadata = {}
    for name, record in records.items():
        (tmp_path / name).mkdir()
        metadata[name] = {"name": name, **({"onnx": record} if record is not None else {}),
                          "training_environment": {"numpy": "2.4.6"},
                          "input_schema": {"columns": [{"name": "age", "dtype": "float64"}]}}
        (tmp_path / name / "metadata.json").write_text(json.dumps(metadata[name]))
    return metadata


def test_no_converted_model_means_no_onnx_distribution(tmp_path):
    metadata = models(tmp_path, {"Team": {"status": "not converted", "reason": "no converter for features.LogFare"},
                                 "Old": None})
    assert onnx_package.build_twin("1.1.1+t", tmp_path / "dist", tmp_path, metadata, {}, 0, "t") is None
    assert not (tmp_path / "dist").exists()
    converted, missing = onnx_package.plan(tmp_path, metadata)
    assert converted == [] and missing["Team"] == "not converted: no converter for features.LogFare"
    assert missing["Old"].startswith("not converted at training")
    summary = onnx_package.summary(None, "1.1.1+t", tmp_path, ["Old", "Team"])
    assert summary.startswith("ONNX: no model converted, so no mymodel-onnx 1.1.1+t is published")


def test_the_onnx_distribution_requires_onnxruntime_and_numpy_only():
    needed = onnx_package.requires({"M": {"training_environment": {"numpy": "2.4.6", "scikit-learn": "1.9.1"}}})
    assert needed == {"numpy": ">=2.4,<3", "onnxruntime": ">=1.32,<2"}
    text = onnx_package.pyproject("1.1.1+t", needed)
    assert 'name = "mymodel-onnx"' in text and 'dependencies = ["numpy>=2.4,<3", "onnxruntime>=1.32,<2"]' in text
    assert 'mymodel-onnx = "mymodel_onnx.__main__:main"' in text


def test_the_card_shows_a_hostile_reason_as_text():
    metadata = {"A": {"onnx": {"status": "converted", "opset": 17},
                      "input_schema": {"columns": [{"name": "age"}]}}}
    card = onnx_package.card("1.1.1+t", metadata, ["A"], {"B": "disagrees: [click](http://x) <b>"})
    assert "| A | yes (opset 17) |" in card
    assert "](http" not in card and "<b>" not in card


def test_the_onnx_twin_names_its_files():
    assert onnx_names.twin_wheel_name("1.1.1+t") == "mymodel_onnx-1.1.1+t-py3-none-any.whl"
    assert onnx_names.is_twin_file("mymodel_onnx-1.1.1+t-py3-none-any.whl")
    assert not onnx_names.is_twin_file("mymodel-1.1.1+t-py3-none-any.whl")
