"""One ONNX model run by onnxruntime on checked input columns, answering as the scikit-learn package does.

numpy and onnxruntime only; pandas is imported when it is installed, to hand back a DataFrame.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from .contract import task_of

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": np.object_,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32}


# onnxruntime's intra-op threads (one per core) busy-wait for work between runs by default; the spinning
# starts as the session is created, so a cold import + predict paid it in CPU and, on a busy machine, in
# wall time (the session's creation 63 -> 34 ms under load). Without it they sleep until a run wakes them.
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}


def session(model: bytes):
    """An InferenceSession on the CPU for a model's checked bytes (onnxruntime's own thread pools, not spinning)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: a consumer's stderr gets no optimiser chatter
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxModel:
    def __init__(self, inference, meta: dict[str, Any]) -> None:
        self.inference, self.meta = inference, meta
        inputs = inference.get_inputs()
        recorded = [spec.get("name") for spec in meta.get("onnx", {}).get("inputs", [])]
        # The graph's inputs are the raw columns in the recorded order; their names may be sanitised
        # by the converter ('od280/od315' -> 'od280_od315'), so they are matched by position.
        columns = recorded if len(recorded) == len(inputs) else [c["name"] for c in meta["input_schema"]["columns"]]
        self.feeds = [(column, node.name, _DTYPES.get(node.type, np.float32)) for column, node in zip(columns, inputs)]
        outputs = [node.name for node in inference.get_outputs()]
        self.label = "label" if "label" in outputs else outputs[0]
        rest = [name for name in outputs if name != self.label]
        self.probabilities = "probabilities" if "probabilities" in rest else (rest[0] if rest else None)

    def predict(self, columns: dict[str, list]):
        feed = {name: _column(columns[column], dtype) for column, name, dtype in self.feeds}
        wanted = [self.label] + ([self.probabilities] if self.probabilities and task_of(self.meta) != "regression" else [])
        answers = self.inference.run(wanted, feed)
        result: dict[str, list] = {}
        if task_of(self.meta) == "regression":
            result["prediction"] = [float(v) for v in np.asarray(answers[0], dtype=np.float64).reshape(-1)]
            return _shaped(result)
        result["prediction"] = [_plain(v) for v in np.asarray(answers[0]).reshape(-1)]
        if len(answers) > 1:
            classes = self.meta.get("classes", [])
            probabilities = _probability_matrix(answers[1], classes)
            for position, label in enumerate(classes):
                result[f"probability_{label}"] = probabilities[:, position].tolist()
        return _shaped(result)


def _column(values: list, dtype) -> np.ndarray:
    if dtype is np.object_:  # text: a missing category is the empty string, as the conversion imputes it
        return np.array(["" if v is None else str(v) for v in values], dtype=np.object_).reshape(-1, 1)
    return np.asarray(values, dtype=dtype).reshape(-1, 1)


def _probability_matrix(answer: Any, classes: list[str]) -> np.ndarray:
    """A (rows, classes) float64 matrix from a tensor, or from ZipMap's list of {class: probability}."""
    if isinstance(answer, list):
        return np.array([[row.get(_key(row, label), 0.0) for label in classes] for row in answer], dtype=np.float64)
    return np.asarray(answer, dtype=np.float64)


def _key(row: dict, label: str):
    """ZipMap keys are the classes as the model saw them: strings, or integers for integer labels."""
    if label in row:
        return label
    return int(label) if label.lstrip("-").isdigit() else label


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return value.decode() if isinstance(value, bytes) else str(value)


def _shaped(result: dict[str, list]):
    """A DataFrame when pandas is installed (as the scikit-learn package answers), else one dict per row."""
    if importlib.util.find_spec("pandas") is not None:
        import pandas as pd

        return pd.DataFrame(result)
    return [dict(zip(result, values)) for values in zip(*result.values())]
