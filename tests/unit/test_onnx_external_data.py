"""ONNX external data: a model whose tensors lie outside its bytes is found wherever ONNX can hold a
tensor (onnx_runtime/external_data.py, the -onnx runtime's check, which the release uses too), and
the release refuses to publish one."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline.errors import BuildError
from pipeline.package.own_package import onnx_external_data as external_data
from pipeline.steps import onnx_package


def constant(output: str, tensor: str, size: int = 4) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [output], value=numpy_helper.from_array(np.ones(size, np.float32), tensor))


def branch(name: str, tensor: str) -> onnx.GraphProto:
    return helper.make_graph([constant(name, tensor)], name, [], [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)])


def model() -> onnx.ModelProto:
    """Tensors in every place ONNX keeps them: an initializer, a sparse initializer, a Constant's attribute,
    a subgraph (If), a function's node."""
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(2, np.float32), "sparse_values"),
                                       numpy_helper.from_array(np.array([0, 3], np.int64), "sparse_indices"), [5])
    nodes = [constant("c", "attribute"),
             helper.make_node("If", ["cond"], ["o"], then_branch=branch("then", "subgraph"),
                              else_branch=branch("else", "other"))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.ones(3, np.float32), "initializer")],
                              sparse_initializer=[sparse])
    function = helper.make_function("team", "f", [], ["y"], [constant("y", "in_function")],
                                    [helper.make_opsetid("", 17)])
    return helper.make_model(graph, functions=[function], opset_imports=[helper.make_opsetid("", 17),
                                                                        helper.make_opsetid("team", 1)])


def tensor_named(proto, name: str):
    """The TensorProto called ``name`` anywhere in ``proto`` (a breadth-first walk of the message tree)."""
    pending = [proto]
    while pending:
        message = pending.pop()
        if isinstance(message, TensorProto) and message.name == name:
            return message
        for _, value in message.ListFields():
            values = value if isinstance(value, (list, tuple)) or hasattr(value, "extend") else [value]
            pending += [v for v in values if hasattr(v, "ListFields")]
    raise LookupError(name)


@pytest.mark.parametrize("name", ["initializer", "sparse_values", "attribute", "subgraph", "in_function"])
def test_a_tensor_kept_outside_is_found_wherever_onnx_keeps_tensors(name):
    assert external_data.external_tensor(model().SerializeToString()) is None
    forged = model()
    tensor = tensor_named(forged, name)
    onnx.external_data_helper.set_external_data(tensor, location="../.env")
    tensor.data_location = TensorProto.EXTERNAL
    assert external_data.external_tensor(forged.SerializeToString()) == name
    del tensor.external_data[:]  # the data location alone is enough for onnxruntime to look outside
    assert external_data.external_tensor(forged.SerializeToString()) == name


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x3a\x05ab", b"\x0b"])
def test_bytes_that_are_no_protobuf_message_are_refused(data):
    with pytest.raises(external_data.NotAModel):
        external_data.external_tensor(data)


def test_the_release_refuses_to_publish_a_model_with_external_data(tmp_path):
    forged = model()
    tensor = tensor_named(forged, "initializer")
    onnx.external_data_helper.set_external_data(tensor, location="weights.bin")
    tensor.data_location = TensorProto.EXTERNAL
    (tmp_path / "M").mkdir()
    (tmp_path / "M" / "model.onnx").write_bytes(forged.SerializeToString())
    digest = hashlib.sha256(forged.SerializeToString()).hexdigest()
    metadata = {"M": {"name": "M", "onnx": {"status": "converted", "sha256": digest, "opset": 17},
                      "training_environment": {"numpy": "2.4.6"}, "input_schema": {"columns": [{"name": "a"}]}}}
    (tmp_path / "M" / "metadata.json").write_text(json.dumps(metadata["M"]))
    with pytest.raises(BuildError) as refused:
        onnx_package.build_twin("1.1.1+t", tmp_path / "dist", tmp_path, metadata, {}, 0, "t")
    assert "M/model.onnx keeps the tensor 'initializer' outside the file (ONNX external data)" in str(refused.value)
    assert not (tmp_path / "dist").exists()


def test_a_tensor_after_a_forests_worth_of_numbers_and_strings_is_still_found():
    """The runs of numbers and strings a tree ensemble keeps are passed over in bulk (the cold start of an
    -onnx package): a tensor behind them, in the same node, is still read and its data location seen."""
    forest = helper.make_node("TreeEnsembleClassifier", ["x"], ["y"], domain="ai.onnx.ml",
                              nodes_featureids=list(range(20_000)), nodes_values=[0.5] * 20_000,
                              nodes_modes=["BRANCH_LEQ", "LEAF"] * 10_000, big=[2 ** 62] * 100,
                              value=numpy_helper.from_array(np.ones(3, np.float32), "behind_the_forest"))
    graph = helper.make_graph([forest], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    forged = helper.make_model(graph)
    assert external_data.external_tensor(forged.SerializeToString()) is None
    tensor_named(forged, "behind_the_forest").data_location = TensorProto.EXTERNAL
    assert external_data.external_tensor(forged.SerializeToString()) == "behind_the_forest"


def message(field: int, payload: bytes) -> bytes:
    """One length-delimited field (sizes below 128 here: one byte)."""
    assert len(payload) < 0x80
    return bytes([field << 3 | 2, len(payload)]) + payload


@pytest.mark.parametrize("cut", [1, 2, 5])
def test_a_run_of_numbers_cut_short_is_refused(cut):
    attribute = helper.make_attribute("ints", [2 ** 40] * 10).SerializeToString()  # ints: one varint each
    node = message(5, attribute[:-cut])  # NodeProto.attribute, its last number cut
    with pytest.raises(external_data.NotAModel):
        external_data.external_tensor(message(7, message(1, node)))  # ModelProto.graph, GraphProto.node


def test_a_forests_strings_are_passed_over_in_bulk(monkeypatch):
    """Twenty thousand node modes (AttributeProto.strings) cost the walk a handful of Python steps, not two
    varints each: the cold start of an -onnx package with a forest (a quarter of it before)."""
    forest = helper.make_node("TreeEnsembleClassifier", ["x"], ["y"], domain="ai.onnx.ml",
                              nodes_modes=["BRANCH_LEQ", "LEAF"] * 10_000, classlabels_strings=["x" * 200, "y"])
    graph = helper.make_graph([forest], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    steps = []
    counted = external_data._varint
    monkeypatch.setattr(external_data, "_varint", lambda data, position: steps.append(position) or counted(data, position))
    assert external_data.external_tensor(helper.make_model(graph).SerializeToString()) is None
    assert len(steps) < 100


@pytest.mark.parametrize("cut", [1, 5, 11])
def test_a_run_of_strings_cut_short_is_refused(cut):
    attribute = helper.make_attribute("modes", ["BRANCH_LEQ", "LEAF"] * 6).SerializeToString()
    node = message(5, attribute[:-cut])  # NodeProto.attribute, cut in its type (last, 3 bytes) or its strings
    with pytest.raises(external_data.NotAModel):
        external_data.external_tensor(message(7, message(1, node)))
