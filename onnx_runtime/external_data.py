"""Does an ONNX model keep tensors outside its own bytes (ONNX "external data")?

onnxruntime reads such a tensor from a file named in the model, relative to the process's
working directory when the model comes as bytes: a forged ``model.onnx`` could read a
consumer's ``.env`` into its predictions. Models a release publishes never have external
data; the -onnx runtime refuses any that does before onnxruntime sees it, and the release
refuses to publish one (the pipeline loads this very file).

Standard library only (the runtime has no ``onnx`` package): the model's protobuf is walked
by its wire format, following only the fields that can hold a tensor (onnx/onnx.proto).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container

# Where a message of ONNX's protobuf holds messages that may hold tensors: field number -> their kind.
HOLDS = {
    "model": {7: "graph", 20: "training", 25: "function"},  # ModelProto: graph, training_info, functions
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto: initialization, algorithm
    "function": {7: "node", 11: "attribute"},  # FunctionProto: node, attribute_proto
    "graph": {1: "node", 5: "tensor", 15: "sparse"},  # GraphProto: node, initializer, sparse_initializer
    "node": {5: "attribute"},  # NodeProto: attribute
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},  # t g tensors graphs ...
    "sparse": {1: "tensor", 2: "tensor"},  # SparseTensorProto: values, indices
    "tensor": {},
}
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION, EXTERNAL = 8, 13, 14, 1
DEPTH_LIMIT = 100  # nested messages followed (protobuf's own default recursion limit)
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


@functools.cache  # compiled for the kinds a model has, when its first message of that kind is walked
def _skipping(kind: str) -> re.Pattern[bytes]:
    r"""A run of fields that cannot hold a tensor in a message of ``kind``: numbers (varint, fixed32,
    fixed64) under a one-byte key, of fields this walk does not follow, and in an attribute strings
    shorter than 128 bytes too. A tree ensemble keeps its nodes in hundreds of thousands of unpacked
    numbers (AttributeProto's ints and floats) and tens of thousands of strings (its node modes);
    skipped in one regular-expression match, not a Python loop per field, the check of a 1.5 MB forest
    takes milliseconds, not a fifth of a consumer's cold start. (A string's bytes are matched by one
    alternative per one-byte size, ``\x04.{4}``: compiled for attributes only, where such runs are.)
    Anything else (a longer key, a message, a longer string, bytes that end early) is left to fields(),
    which reads and checks it as before."""
    wires = (VARINT, FIXED64, FIXED32, LENGTH_DELIMITED)
    keys = {wire: bytes(field << 3 | wire for field in range(1, 16) if field not in HOLDS[kind]) for wire in wires}

    def one_of(wire: int) -> bytes:
        return b"[" + b"".join(re.escape(bytes([key])) for key in keys[wire]) + b"]"

    patterns = [one_of(VARINT) + rb"[\x80-\xff]{0,9}+[\x00-\x7f]", one_of(FIXED32) + rb".{4}", one_of(FIXED64) + rb".{8}"]
    if kind == "attribute":
        sized = b"|".join(re.escape(bytes([size])) + b".{%d}" % size for size in range(0x80))
        patterns.append(one_of(LENGTH_DELIMITED) + b"(?:" + sized + b")")
    # Runs of one kind of field, each run possessive: a key decides its field's length, so there is one way
    # to match, and no backtracking state is kept for a forest's hundreds of thousands of fields.
    return re.compile(b"(?>" + b"|".join(b"(?:" + field + b")++" for field in patterns) + b")++", re.DOTALL)


class NotAModel(ValueError):
    """The bytes are not a protobuf message this walk can follow."""


def external_tensor(model: bytes) -> str | None:
    """The name of the first tensor whose data lies outside ``model`` ("" if unnamed); None if every
    tensor's data is inside. NotAModel for bytes that are no protobuf message."""
    pending = [("model", memoryview(model), 0)]
    while pending:
        kind, data, depth = pending.pop()
        if depth > DEPTH_LIMIT:
            raise NotAModel(f"messages nested deeper than {DEPTH_LIMIT}")
        name, outside = "", False
        # A tensor's own numbers are read (its data location is one), so tensors are walked field by field.
        follow, skipping = (None, None) if kind == "tensor" else (HOLDS[kind], _skipping(kind))
        for field, wire, value in fields(data, skipping, follow):
            if kind == "tensor":
                if field == TENSOR_NAME and wire == LENGTH_DELIMITED:
                    name = bytes(value).decode("utf-8", "replace")
                elif field == TENSOR_EXTERNAL_DATA or (field == TENSOR_DATA_LOCATION and value == EXTERNAL):
                    outside = True
            elif field in HOLDS[kind]:
                if wire != LENGTH_DELIMITED:
                    raise NotAModel(f"field {field} of a {kind} is not a message")
                pending.append((HOLDS[kind][field], value, depth + 1))
        if outside:
            return name
    return None


def fields(data: memoryview, skipping: re.Pattern[bytes] | None = None, follow: Container[int] | None = None):
    """(field number, wire type, value) of each field of one message: an int, or a view of the bytes;
    without the runs of fields ``skipping`` matches, and, if ``follow`` is given, only the fields it
    names (every field is still read and checked: a tree ensemble's forty thousand node modes are
    strings passed over here, one-byte keys and sizes read in place)."""
    position, end = 0, len(data)
    while position < end:
        if skipping is not None and (run := skipping.match(data, position)):
            position = run.end()
            if position == end:
                return
        key, position = _varint(data, position)
        field, wire = key >> 3, key & 7
        if wire == VARINT:
            value, position = _varint(data, position)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            value, position = data[position:position + size], position + size
        elif wire == LENGTH_DELIMITED:
            size, position = _varint(data, position)
            value, position = None, position + size
            if follow is None or field in follow:
                value = data[position - size:position]
        else:
            raise NotAModel(f"wire type {wire} (groups are not ONNX)")
        if position > end or field == 0:
            raise NotAModel("a field runs past the end of its message")
        if follow is None or field in follow:
            yield field, wire, value


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    if position < len(data) and (byte := data[position]) < 0x80:  # most keys and sizes: one byte
        return byte, position + 1
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise NotAModel("a number runs past the end of its message")
        byte = data[position]
        result |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return result, position
