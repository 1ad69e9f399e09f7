"""ONNX copies of the trained models, each checked against its scikit-learn Pipeline on every held-out row.

The contract a consumer of ``model.onnx`` relies on (docs/onnx.md says the same):

- ``src/<import name>/models/<Name>/model.onnx`` sits next to ``model.joblib`` only when the
  model converted (preprocessing included) and agreed with scikit-learn on every held-out row.
- ``metadata.json`` of every model has the key ``"onnx"``, either::

      {"status": "converted", "sha256": <hex of model.onnx>, "opset": <opset of the default domain>,
       "inputs": [{"name": <column>, "type": "float" | "string"}, ...],   # the input schema's order
       "outputs": {"label": "label", "probabilities": "probabilities"},  # a classifier
                  # or {"variable": "variable"} for a regressor
       "max_difference": <largest difference found>, "rows_checked": <held-out rows compared>}

  or ``{"status": "not converted" | "disagrees", "reason": "<one line>"}``, and no model.onnx.
- Inputs: one per raw feature column, named exactly as the column, shape ``[None, 1]``.
  ``"float"`` is ``tensor(float)`` (float32; a missing number is NaN), ``"string"`` is
  ``tensor(string)`` (a missing category is the empty string ``""``).
- Outputs of a classifier: ``label`` (shape ``[None]``, ``tensor(string)``: the class as
  metadata.json ``classes`` spells it) and ``probabilities`` (``[None, n_classes]`` float32, columns
  in the order of ``classes``). Of a regressor: ``variable`` (``[None, 1]`` float32).
- Agreement: the same label on every row and probabilities within 1e-5 (absolute); regression
  outputs within 1e-6 relative (absolute below 1): ``[release] onnx_tolerance`` in dataset.toml
  replaces the task's figure. ``max_difference`` is the largest such difference seen.

``[release] onnx`` in dataset.toml: ``"optional"`` (default) ships a model that does not convert or
disagrees without model.onnx, with the reason; ``"required"`` makes that a failure; ``"off"`` converts
nothing (no ``"onnx"`` key).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import cache as work_cache
from pipeline.cache import Cache
from pipeline.config import CLASSIFICATION, ONNX_OPSET, ONNX_POLICIES, ONNX_TOLERANCE, REGRESSION
from pipeline.errors import BuildError, OnnxError
from pipeline.steps import team_code
from pipeline.steps.team_functions import one_line
from pipeline.package.own_package import onnx_external_data, store

sha256_file = store.sha256_file

ONNX_FILE = "model.onnx"
METADATA_KEY = "onnx"
CONVERTED, NOT_CONVERTED, DISAGREES = "converted", "not converted", "disagrees"
FLOAT, STRING = "float", "string"
OUTPUTS = {CLASSIFICATION: {"label": "label", "probabilities": "probabilities"},
           REGRESSION: {"variable": "variable"}}
MISSING_CATEGORY = ""  # a string tensor has no NaN: a missing category is fed as the empty string


@dataclass(frozen=True)
class Exported:
    """One model's outcome: the metadata record and, when it converted and agreed, model.onnx's bytes."""

    record: dict
    model: bytes | None = None

    def describe(self, name: str) -> str:
        """The one line a run prints for this model."""
        record = self.record
        if record["status"] == CONVERTED:
            return (f"onnx: {name} converted ({record['rows_checked']} held-out rows agree, "
                    f"max difference {record['max_difference']:.2g})")
        return f"onnx: {name} {record['status']}: {record['reason']}; it ships without ONNX"


def export(name: str, pipeline: Any, X: Any, task: str, numeric_features: tuple[str, ...],
           tolerance: float | None = None) -> Exported:
    """Convert ``pipeline`` (fitted, preprocessing included) and compare it with scikit-learn on the rows ``X``."""
    inputs = [{"name": str(c), "type": FLOAT if c in numeric_features else STRING} for c in X.columns]
    with warnings.catch_warnings():
        # skl2onnx reads attributes scikit-learn deprecates (SVC's probA_): not the user's concern
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return _exported(name, pipeline, X, inputs, task, tolerance)


def _exported(name: str, pipeline: Any, X: Any, inputs: list[dict], task: str, tolerance: float | None) -> Exported:
    try:
        model = convert(name, pipeline, inputs, task)
    except Exception as exc:  # noqa: BLE001 - any converter failure is this model's outcome, not the run's
        return Exported({"status": NOT_CONVERTED, "reason": _reason(exc, pipeline)})
    outside = onnx_external_data.external_tensor(model)
    if outside is not None:  # a converter's doing: the -onnx runtime would refuse it, and it is never published
        return Exported({"status": NOT_CONVERTED, "reason": f"the converted model keeps the tensor {outside!r} "
                                                            "outside its graph (ONNX external data)"})
    try:
        difference, problem = compare(model, pipeline, X, inputs, task, ONNX_TOLERANCE[task] if tolerance is None
                                      else tolerance)
    except Exception as exc:  # noqa: BLE001 - onnxruntime refusing the converted graph
        return Exported({"status": NOT_CONVERTED, "reason": f"onnxruntime cannot run the converted model "
                                                            f"({one_line(exc)})"})
    if problem:
        return Exported({"status": DISAGREES, "reason": problem})
    return Exported({"status": CONVERTED, "sha256": hashlib.sha256(model).hexdigest(), "opset": dict(ONNX_OPSET)[""],
                     "inputs": inputs, "outputs": OUTPUTS[task], "max_difference": difference,
                     "rows_checked": len(X)}, model)


def convert(name: str, pipeline: Any, inputs: list[dict], task: str) -> bytes:
    """model.onnx's bytes: one input per column, named as the column; the same fit gives the same bytes."""
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _register_converters(pipeline)
    types = [(column["name"], FloatTensorType([None, 1]) if column["type"] == FLOAT else StringTensorType([None, 1]))
             for column in inputs]
    options = {id(pipeline): {"zipmap": False}} if task == CLASSIFICATION else None
    # name: the graph's name, else skl2onnx draws a random one and the bytes change on every run
    model = skl2onnx.convert_sklearn(pipeline, initial_types=types, options=options, target_opset=dict(ONNX_OPSET),
                                     name=name)
    _restore_input_names(model, [column["name"] for column in inputs])
    _sort_opset_imports(model)
    outputs = [output.name for output in model.graph.output]
    if outputs != list(OUTPUTS[task].values()):
        raise ValueError(f"the converted model's outputs are {outputs}, not {list(OUTPUTS[task].values())}")
    return model.SerializeToString()


def compare(model: bytes, pipeline: Any, X: Any, inputs: list[dict], task: str,
            tolerance: float) -> tuple[float, str | None]:
    """(largest difference, the disagreement in one line or None) of ONNX Runtime against scikit-learn on ``X``."""
    outputs = session(model).run(None, feed(X, inputs))
    if task == REGRESSION:
        expected = np.asarray(pipeline.predict(X), dtype=np.float64).ravel()
        got = np.asarray(outputs[0], dtype=np.float64).ravel()
        differences = np.abs(got - expected) / np.maximum(np.abs(expected), 1.0)
        worst = _rounded(differences.max(initial=0.0))
        if not worst <= tolerance:  # also NaN
            row = int(np.nanargmax(differences)) if np.isfinite(differences).any() else 0
            return worst, (f"prediction differs by {worst:.2g} (relative) on held-out row {row}: scikit-learn "
                           f"{expected[row]:.6g}, ONNX {got[row]:.6g}; tolerance {tolerance:g}")
        return worst, None
    labels = np.asarray(pipeline.predict(X)).astype(str)
    got_labels = np.asarray(outputs[0]).ravel().astype(str)
    wrong = np.flatnonzero(got_labels != labels)
    if len(wrong):
        row = int(wrong[0])
        return float("nan"), (f"{len(wrong)} of {len(X)} held-out labels differ (row {row}: scikit-learn "
                              f"{str(labels[row])!r}, ONNX {str(got_labels[row])!r})")
    differences = np.abs(np.asarray(outputs[1], dtype=np.float64) - pipeline.predict_proba(X))
    worst = _rounded(differences.max(initial=0.0))
    if not worst <= tolerance:
        row = int(np.nanargmax(differences.max(axis=1)))
        return worst, (f"probabilities differ by {worst:.2g} on held-out row {row}; tolerance {tolerance:g}")
    return worst, None


def feed(X: Any, inputs: list[dict]) -> dict[str, np.ndarray]:
    """The ONNX inputs for the rows of the DataFrame ``X``: one [rows, 1] array per column."""
    arrays = {}
    for column in inputs:
        values = X[column["name"]]
        if column["type"] == FLOAT:
            arrays[column["name"]] = values.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            arrays[column["name"]] = np.array([MISSING_CATEGORY if _missing(v) else str(v) for v in values],
                                              dtype=object).reshape(-1, 1)
    return arrays


def session(model: bytes) -> Any:
    """An ONNX Runtime session on one thread: the same sums in the same order on every run, and quiet."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def exported_all(models: dict[str, Any], X: Any, task: str, numeric_features: tuple[str, ...],
                 policy: str, tolerance: float | None = None, out=print, cache: Cache | None = None) -> dict[str, Exported]:
    """Every model's outcome (name -> fitted pipeline), one printed line each; with ``policy`` "required",
    any model without ONNX stops the run (OnnxError) before anything is saved. An outcome ``cache``
    holds for the same pickle, rows, settings, libraries and code is taken from it (export_kept)."""
    if policy not in ONNX_POLICIES:
        raise ValueError(policy)
    return settled({name: export_kept(name, pipeline, X, task, numeric_features, tolerance, cache)
                    for name, pipeline in models.items()}, policy, out)


def export_kept(name: str, pipeline: Any, X: Any, task: str, numeric_features: tuple[str, ...],
                tolerance: float | None = None, cache: Cache | None = None) -> tuple[Exported, bool]:
    """(the outcome, whether it came from ``cache``): kept there when converted and checked now."""
    if cache is None:
        return export(name, pipeline, X, task, numeric_features, tolerance), False
    key = conversion_key(name, pipeline, X, task, numeric_features, tolerance)
    found = cached_outcome(cache, key)
    if found is not None:
        return found, True
    outcome = export(name, pipeline, X, task, numeric_features, tolerance)
    remember_outcome(cache, key, outcome)
    return outcome, False


def settled(outcomes: dict[str, tuple[Exported, bool]], policy: str, out=print) -> dict[str, Exported]:
    """Print each model's outcome (name -> (outcome, from the cache)); OnnxError when ``policy`` is "required"
    and one has no ONNX copy."""
    for name, (outcome, kept) in outcomes.items():
        out(outcome.describe(name) + (f" {FROM_CACHE}" if kept else ""))
    exported = {name: outcome for name, (outcome, _) in outcomes.items()}
    failed = [(name, outcome) for name, outcome in exported.items() if outcome.model is None]
    if policy == "required" and failed:
        name, outcome = failed[0]
        more = f" (and {len(failed) - 1} more: {', '.join(n for n, _ in failed[1:])})" if len(failed) > 1 else ""
        what = "does not convert to ONNX" if outcome.record["status"] == NOT_CONVERTED else "disagrees with its ONNX copy"
        raise OnnxError(f"the model {name!r} {what} ({outcome.record['reason']}){more}, and "
                        '[release] onnx = "required" in dataset.toml; make the model convertible (or remove its '
                        'table), or set onnx = "optional" to ship it without ONNX')
    return exported


def packaged_files(models_dir: Path, metadata: dict[str, dict]) -> dict[str, str]:
    """``{"<Name>/model.onnx": sha256}`` of the converted models (model name -> metadata.json), each
    file checked against the sha256 its training recorded: a build never pairs a model with another's ONNX."""
    files = {}
    for name, meta in sorted(metadata.items()):
        record = meta.get(METADATA_KEY) or {}
        if record.get("status") != CONVERTED:
            continue
        path = models_dir / name / ONNX_FILE
        actual = sha256_file(path) if path.is_file() else None
        if actual != record.get("sha256"):
            state = "is missing" if actual is None else f"has sha256 {actual}, not the {record.get('sha256')} recorded"
            raise BuildError(f"{path} {state} in {name}/metadata.json; run make train (make release does it)")
        files[f"{name}/{ONNX_FILE}"] = actual
    return files


def _reason(exc: BaseException, pipeline: Any) -> str:
    """Why ``pipeline`` did not convert: the class skl2onnx has no converter for, when there is one (skl2onnx
    itself often fails later, on column names), and the way out; else skl2onnx's own error."""
    if isinstance(exc, team_code.TeamHookError):
        return str(exc)
    missing = without_converter(pipeline)
    if missing:
        return (f"skl2onnx has no converter for {missing[0]}"
                + (f" (nor for {', '.join(missing[1:])})" if len(missing) > 1 else "")
                + f"; register one in its module: def {team_code.ONNX_HOOK}() calling "
                "skl2onnx.update_registered_converter (docs/onnx.md)")
    return f"skl2onnx cannot convert it ({one_line(exc)})"


def without_converter(estimator: Any) -> list[str]:
    """The classes inside a fitted ``estimator`` that skl2onnx has no converter for, as module.qualname;
    a pipeline, column transformer or feature union is looked into (skl2onnx converts their parts)."""
    from skl2onnx import get_model_alias

    missing, pending = [], [estimator]
    while pending:
        step = pending.pop()
        if step is None or isinstance(step, str):  # "passthrough", "drop"
            continue
        try:
            get_model_alias(type(step))
        except RuntimeError:
            missing.append(f"{type(step).__module__}.{type(step).__qualname__}")
            continue
        if hasattr(step, "steps"):
            pending += [part for _, part in step.steps]
        elif hasattr(step, "transformers_") or hasattr(step, "transformers"):
            pending += [part for _, part, _ in getattr(step, "transformers_", step.transformers)]
        elif hasattr(step, "transformer_list"):
            pending += [part for _, part in step.transformer_list]
    return sorted(set(missing))


def _restore_input_names(model: Any, columns: list[str]) -> None:
    """skl2onnx rewrites names it finds unusual ("od280/od315" -> "od280_od315"): each input gets its column's name back."""
    for graph_input, column in zip(model.graph.input, columns, strict=True):
        old = graph_input.name
        if old == column:
            continue
        graph_input.name = column
        for node in model.graph.node:
            node.input[:] = [column if name == old else name for name in node.input]


def _sort_opset_imports(model: Any) -> None:
    """skl2onnx lists the opsets in set order, which changes between processes (and may list one twice):
    sorted and once each, the bytes do not change."""
    imports = sorted({(entry.domain, entry.version) for entry in model.opset_import})
    del model.opset_import[:]
    for domain, version in imports:
        model.opset_import.add(domain=domain, version=version)


def _rounded(value: float) -> float:
    """Three significant digits: what a reader needs, and the same text in every rebuild."""
    return float(f"{float(value):.3g}")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


_registered: set[str] = set()


def _register_converters(pipeline: Any) -> None:
    """What stock skl2onnx lacks for the pipeline's own preprocessing and for the estimators by import path,
    and the converters the team's modules register for their own classes (each call: a module may change)."""
    if "pipeline" not in _registered:
        _register_missing_category_imputer()
        _integer_missing_flags()
        _registered.add("pipeline")
    team_code.register_onnx_converters()
    for library in ONNXMLTOOLS_CONVERTERS:
        if library not in _registered and _uses(pipeline, library):
            _register_onnxmltools(library)
            _registered.add(library)


def _register_missing_category_imputer() -> None:
    """The categorical SimpleImputer imputes NaN (scikit-learn's missing value) with the most frequent
    category; skl2onnx refuses a NaN missing value on strings (a string tensor cannot hold NaN). In
    ONNX the missing category is the empty string: converted as an imputer of "" with the same statistics."""
    import copy

    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    def convert_imputer(scope, operator, container):
        imputer = operator.raw_operator
        if isinstance(operator.inputs[0].type, StringTensorType) and not isinstance(imputer.missing_values, str):
            operator.raw_operator = copy.copy(imputer)
            operator.raw_operator.missing_values = MISSING_CATEGORY
        return convert_sklearn_imputer(scope, operator, container)

    update_registered_converter(SimpleImputer, "SklearnSimpleImputer", calculate_sklearn_imputer_output_shapes,
                                convert_imputer)


def _integer_missing_flags() -> None:
    """skl2onnx 1.20 writes a HistGradientBoosting leaf's missing-value flag as False; onnx 1.23 refuses a
    boolean in an integer list ("Expected an int, got a boolean"). The flag is passed on as 0 or 1."""
    from skl2onnx.common import tree_ensemble

    add_node = tree_ensemble.add_node
    if getattr(add_node, "integer_flags", False):
        return

    def add_node_with_integer_flag(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return add_node(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    add_node_with_integer_flag.integer_flags = True
    tree_ensemble.add_node = add_node_with_integer_flag


def _uses(pipeline: Any, library: str) -> bool:
    steps = getattr(pipeline, "steps", [(None, pipeline)])
    final = steps[-1][1]
    final = getattr(final, "estimator", final) if type(final).__name__ == "CalibratedClassifierCV" else final
    return type(final).__module__.partition(".")[0] == library


# Estimators by import path that onnxmltools converts: library -> (classifier, regressor, its converter).
ONNXMLTOOLS_CONVERTERS = {
    "lightgbm": ("LGBMClassifier", "LGBMRegressor", "onnxmltools.convert.lightgbm.operator_converters.LightGbm",
                 "convert_lightgbm"),
    "xgboost": ("XGBClassifier", "XGBRegressor", "onnxmltools.convert.xgboost.operator_converters.XGBoost",
                "convert_xgboost"),
}


def _register_onnxmltools(library: str) -> None:
    """skl2onnx converts the pipeline around a LightGBM or XGBoost estimator with onnxmltools' converter."""
    import importlib

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes, calculate_linear_regressor_output_shapes,
    )

    classifier, regressor, module, function = ONNXMLTOOLS_CONVERTERS[library]
    estimators, converter = importlib.import_module(library), getattr(importlib.import_module(module), function)
    alias = f"{library}{{}}"
    update_registered_converter(getattr(estimators, classifier), alias.format(classifier),
                                calculate_linear_classifier_output_shapes, converter,
                                options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(getattr(estimators, regressor), alias.format(regressor),
                                calculate_linear_regressor_output_shapes, converter)


# -- the outcomes kept by what decides them (pipeline/cache.py)

CACHE_KIND = "onnx"
# The pipeline's code a conversion and its check follow (with the package's): keep converter code in these files.
CONVERSION_CODE = ("pipeline/steps/onnx_*.py", "pipeline/steps/model_specs.py", "pipeline/config.py")
FROM_CACHE = "[the same pickle, rows and settings converted and checked before: from the cache]"


def conversion_key(name: str, pipeline: Any, X: Any, task: str, numeric_features: tuple[str, ...],
                   tolerance: float | None) -> str:
    """What decides a model's outcome: its pickle, the held-out rows, the settings, every installed
    library's version (the converters' among them) and the code that converts and checks: CONVERSION_CODE
    and the package's modules (a team module may register a converter)."""
    return work_cache.digest({
        "work": CACHE_KIND, "name": name, "model": work_cache.pickle_sha256(pipeline),
        "rows": work_cache.rows_sha256(X), "task": task,
        "numeric_features": list(numeric_features), "tolerance": ONNX_TOLERANCE[task] if tolerance is None else tolerance,
        "opset": ONNX_OPSET, "environment": work_cache.environment(), "code": work_cache.code(*CONVERSION_CODE)})


def cached_outcome(cache: Cache, key: str) -> Exported | None:
    entry = cache.get(CACHE_KIND, key)
    if entry is None:
        return None
    record = entry.document.get("record")
    if not isinstance(record, dict) or record.get("status") not in (CONVERTED, NOT_CONVERTED, DISAGREES):
        return None
    if record["status"] != CONVERTED:
        return Exported(record)
    try:
        model = entry.read(ONNX_FILE) if ONNX_FILE in entry.files else None
    except OSError:  # removed since (another run's pruning): converted again
        return None
    return Exported(record, model) if model and hashlib.sha256(model).hexdigest() == record.get("sha256") else None


def remember_outcome(cache: Cache, key: str, outcome: Exported) -> None:
    cache.put(CACHE_KIND, key, {"record": outcome.record}, {ONNX_FILE: outcome.model} if outcome.model else {})
