"""Real ONNX files for tests of the -onnx distribution: skl2onnx converts each trained model of a
models folder and records the outcome in its metadata.json as the release's conversion step does
(``"onnx": {"status": "converted", "sha256", "opset", "inputs", "outputs"}``, or ``"not converted"``
or ``"disagrees"`` with the reason: a graph whose answers on the given rows differ from scikit-learn's
is not shipped). One ONNX input per raw column, shape [None, 1]; numbers as float32."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

OPSET = 17


def convert_models(models_dir: Path, rows) -> dict[str, dict]:
    """Convert every model.joblib under ``models_dir``, checked on ``rows`` (a DataFrame of raw
    columns); model name -> the onnx record written."""
    import joblib
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    records = {}
    for folder in sorted(p for p in models_dir.iterdir() if (p / "model.joblib").is_file()):
        meta_path = folder / "metadata.json"
        meta = json.loads(meta_path.read_text())
        columns = meta["input_schema"]["columns"]
        numeric = [c["dtype"] == "float64" for c in columns]
        types = [(c["name"], FloatTensorType([None, 1]) if is_number else StringTensorType([None, 1]))
                 for c, is_number in zip(columns, numeric)]
        classifier = meta.get("task", "classification") == "classification"
        fitted = joblib.load(folder / "model.joblib")
        try:
            model = to_onnx(fitted, initial_types=types, target_opset=OPSET, options={"zipmap": False} if classifier else None)
        except Exception as exc:  # what skl2onnx refuses is the record's reason
            record = {"status": "not converted", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        else:
            differing = _differing(model.SerializeToString(), fitted, rows, columns, classifier)
            data = model.SerializeToString()
            (folder / "model.onnx").write_bytes(data)
            if differing:
                (folder / "model.onnx").unlink()
                meta["onnx"] = records[folder.name] = {"status": "disagrees", "reason": f"{differing} of {len(rows)} rows differ"}
                meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
                continue
            record = {"status": "converted", "sha256": hashlib.sha256(data).hexdigest(), "opset": OPSET,
                      "inputs": [{"name": c["name"], "type": "float" if n else "string"} for c, n in zip(columns, numeric)],
                      "outputs": {"label": "label", "probabilities": "probabilities"} if classifier else {"value": "variable"}}
        meta["onnx"] = records[folder.name] = record
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return records


def _differing(graph: bytes, fitted, rows, columns: list[dict], classifier: bool) -> int:
    """How many of ``rows`` the graph answers otherwise than scikit-learn (labels; values to 1e-4)."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    feed = {node.name: (rows[[c["name"]]].to_numpy(np.float32) if c["dtype"] == "float64"
                        else rows[[c["name"]]].fillna("").astype(str).to_numpy(object))
            for node, c in zip(session.get_inputs(), columns)}
    ours = session.run(None, feed)[0].reshape(-1)
    theirs = fitted.predict(rows)
    if classifier:
        return int((ours.astype(str) != theirs.astype(str)).sum())
    return int((~np.isclose(ours, theirs, rtol=1e-4, atol=1e-3)).sum())
