"""The model contract of a built package, and the version bump a change to it requires.

Everything is read from the JSON files a build ships (each model's metadata.json,
the manifest's file hashes), never by unpickling, and with the standard library
only: consumers, the index and the release pipeline all import this module.

Versions follow Mercari's data-model-versioning pattern, ``X.Y.Z+data``: X is the
release, Y the interface (what a caller passes in and gets back), Z the logic
(how the answer is computed: estimators, preprocessing, data, libraries).

    >>> schema = {"columns": [{"name": "age", "dtype": "float64", "allows_missing": True}],
    ...           "unseen_categories": "ignore"}
    >>> old = Snapshot("1.1.2+titanic", {"M": {"input_schema": schema, "classes": ["0", "1"]}}, {"M": "a"}, {})
    >>> wider = {**schema, "columns": schema["columns"] + [{"name": "cabin", "dtype": "category",
    ...                                                     "allows_missing": True, "categories": ["A1"]}]}
    >>> new = Snapshot(None, {"M": {"input_schema": wider, "classes": ["0", "1"]}}, {"M": "b"}, {})
    >>> [change.text for change in diff(old, new)]
    ["input column 'cabin' added", "model 'M' bytes changed"]
    >>> required_bump(diff(old, new)), BUMP_KIND[required_bump(diff(old, new))]
    ('minor', 'interface')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

GROUPS = ("interface", "logic", "data", "environment", "metrics")
# The part of X.Y.Z each kind of change moves, in Mercari's names.
BUMP_KIND = {"major": "release", "minor": "interface", "patch": "logic"}
_BUMP_OF_GROUP = {"interface": "minor", "logic": "patch", "data": "patch", "environment": "patch"}
# Metadata keys compared below; any other key that differs is a logic change (e.g. "preprocessing").
# A classifier's precision, recall, F1 and support per class on the held-out rows: {label: {...}}
# (pipeline/steps/evaluation.py computes them; the card, make diff and the registry pages show them).
PER_CLASS_KEY = "per_class"
_KNOWN_KEYS = {"name", "estimator", "params", "metrics", "classes", "input_schema", "data",
               "training_environment", "git", "task", "target_units", "factory", "package_code", "onnx",
               PER_CLASS_KEY, "fit"}
_MISSING = object()
# Metadata a build's models share (one dataset, one environment), compared when no model is in both builds.
_BUILD_KEYS = ("input_schema", "target_units", "data", "training_environment", "package_code")
# The headline metrics of each task, (metrics.json key, label), as tables show them.
SHOWN_METRICS = {
    "classification": (("accuracy", "accuracy"), ("roc_auc", "ROC AUC"), ("f1", "F1"), ("log_loss", "log loss"),
                       ("cv_accuracy_mean", "CV accuracy")),
    "regression": (("r2", "R²"), ("rmse", "RMSE"), ("mae", "MAE"), ("cv_r2_mean", "CV R²")),
}

# The evaluation figures a build ships for each model (models/<name>/figures/<kind>.svg), by task, with their titles.
FIGURES = {
    "classification": (("confusion_matrix", "confusion matrix"), ("roc", "ROC curve"),
                       ("precision_recall", "precision-recall curve"), ("calibration", "calibration curve"),
                       ("permutation_importance", "permutation importance")),
    "regression": (("predicted_vs_actual", "predicted against actual"), ("residuals", "residuals"),
                   ("permutation_importance", "permutation importance")),
}
FIGURE_TITLES = {kind: title for shown in FIGURES.values() for kind, title in shown}


def team_metrics(metadata: Mapping[str, Any]) -> list[str]:
    """The held-out metrics a model records beyond its task's own: those of ``[evaluation] metrics``.

    >>> team_metrics({"metrics": {"accuracy": 0.8, "cv_accuracy_std": 0.1, "f1_macro": 0.7, "metrics:cost": 3.0}})
    ['f1_macro', 'metrics:cost']
    """
    metrics, task = metadata.get("metrics"), metadata.get("task", "classification")
    if not isinstance(metrics, Mapping):
        return []
    own = {key for key, _ in SHOWN_METRICS.get(task if isinstance(task, str) else "", SHOWN_METRICS["classification"])}
    return sorted(key for key in metrics if isinstance(key, str) and key not in own and not key.startswith("cv_"))


def task_of(metadata: Mapping[str, Any]) -> str:
    """A model's task; metadata written before tasks existed is a classification's.

    >>> task_of({"task": "regression"}), task_of({"classes": ["0", "1"]})
    ('regression', 'classification')
    """
    return metadata.get("task", "classification")


@dataclass(frozen=True)
class Change:
    group: str  # one of GROUPS
    text: str


@dataclass(frozen=True)
class Snapshot:
    """What one build contains, read from its JSON files only (never unpickled)."""

    version: str | None  # None for a local training output (make train)
    models: dict[str, dict]  # model name -> its metadata.json
    model_sha256: dict[str, str]  # model name -> sha256 of its model.joblib
    release: dict  # manifest.json "release" (notes: bump, reasons, overrides); {} if none
    # manifest.json "requires": distribution -> range, what the models and the package import; {} if not known
    requires: dict[str, str] = field(default_factory=dict)


def diff(old: Snapshot, new: Snapshot) -> list[Change]:
    """Every change from ``old`` to ``new``, ordered by GROUPS, then models and columns by name.

    A change shared by every model the two builds have in common (the input schema,
    the data, the libraries) is named once; one that only some models have names them.
    Builds with no model in common are compared on what each build's models share (its
    data, task, target, inputs, libraries). The data tag of two published versions is
    their version label (see with_data_tag).
    """
    common = sorted(set(old.models) & set(new.models))
    changes = []
    if not common and old.models and new.models:
        changes += [Change(group, text) for group, text in _shared_changes(_build_wide(old), _build_wide(new))]
    changes += [Change("interface", f"model {name!r} removed") for name in sorted(set(old.models) - set(new.models))]
    changes += [Change("interface", f"model {name!r} added (callers listing models see it)")
                for name in sorted(set(new.models) - set(old.models))]
    shared: dict[tuple[str, str], list[str]] = {}  # (group, text) -> models with that change
    for name in common:
        before, after = old.models[name], new.models[name]
        for group, text in _shared_changes(before, after):
            shared.setdefault((group, text), []).append(name)
        changes += [Change(group, f"{name}: {text}") for group, text in _model_changes(before, after)]
        if old.model_sha256.get(name) != new.model_sha256.get(name):
            changes.append(Change("logic", f"model {name!r} bytes changed"))
    for (group, text), names in shared.items():
        if names == common:
            changes.append(Change(group, text))
        else:
            changes += [Change(group, f"{name}: {text}") for name in names]
    changes += [Change("environment", text) for text in _requirement_changes(old.requires, new.requires)]
    changes = with_data_tag(changes, _label(old.version), _label(new.version))
    return sorted(changes, key=lambda change: GROUPS.index(change.group))


def with_data_tag(changes: list[Change], old_tag: str | None, new_tag: str | None) -> list[Change]:
    """``changes`` with the data tag as two version labels tell it: the label is the release's data tag
    (``make release DATA=`` sets it, whatever the models' metadata recorded).

    >>> [c.text for c in with_data_tag([Change("data", "data tag titanic -> diabetes")], "titanic.v2", "diabetes")]
    ['data tag titanic.v2 -> diabetes']
    """
    if not old_tag or not new_tag or old_tag == new_tag:
        return changes
    return [c for c in changes if not c.text.startswith("data tag ")] + [Change("data", f"data tag {old_tag} -> {new_tag}")]


def required_bump(changes: list[Change]) -> str | None:
    """The smallest part of X.Y.Z the changes require: "minor", "patch", or None (metrics only).

    >>> required_bump([Change("data", "split seed 0 -> 1"), Change("metrics", "M: accuracy 0.8 -> 0.9 (+0.1000)")])
    'patch'
    >>> required_bump([Change("metrics", "M: accuracy 0.8 -> 0.9 (+0.1000)")]) is None
    True
    """
    parts = {_BUMP_OF_GROUP[c.group] for c in changes if c.group in _BUMP_OF_GROUP}
    return "minor" if "minor" in parts else "patch" if "patch" in parts else None


def identical(old: Snapshot, new: Snapshot) -> bool:
    """The same model bytes and no interface, logic, data or environment change."""
    return old.model_sha256 == new.model_sha256 and required_bump(diff(old, new)) is None


def _build_wide(snapshot: Snapshot) -> dict[str, Any]:
    """The metadata every model of a build agrees on: a build is trained on one dataset, for one task."""
    metadata = list(snapshot.models.values())
    agreed: dict[str, Any] = {"task": task_of(metadata[0])} if len({task_of(m) for m in metadata}) == 1 else {}
    for key in _BUILD_KEYS:
        values = [m.get(key, _MISSING) for m in metadata]
        if values[0] is not _MISSING and all(value == values[0] for value in values):
            agreed[key] = values[0]
    return agreed


def _label(version: str | None) -> str | None:
    """The local label of ``X.Y.Z+label`` (the data tag); None for a build with no version."""
    return (version.partition("+")[2] or None) if version else None


def _shared_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Changes usually common to every model of a build: input schema, data, libraries."""
    yield from _schema_changes(old.get("input_schema", {}), new.get("input_schema", {}))
    if task_of(old) != task_of(new):
        yield "interface", f"task {task_of(old)} -> {task_of(new)} (what prediction holds)"
    if old.get("target_units") != new.get("target_units"):
        yield "interface", f"target units {_arrow(old, new, 'target_units')}"
    old_data, new_data = old.get("data", {}), new.get("data", {})
    if old_data.get("target") != new_data.get("target"):
        yield "interface", f"target {_arrow(old_data, new_data, 'target')}"
    for key, before, after in _changed(_flatten(old_data), _flatten(new_data)):
        if key != "target":
            label = f"split {key.removeprefix('split.')}" if key.startswith("split.") else f"data {key}"
            yield "data", f"{label} {_show(before)} -> {_show(after)}"
    for library, before, after in _changed(old.get("training_environment", {}), new.get("training_environment", {})):
        yield "environment", f"{library} {_show(before)} -> {_show(after)}"
    yield from _code_changes(old.get("package_code", {}), new.get("package_code", {}))


def _code_changes(old: Mapping[str, str], new: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """The team's modules in the package (file name -> sha256): their bytes are logic.

    >>> list(_code_changes({"features.py": "a" * 64}, {"features.py": "b" * 64, "util.py": "c" * 64}))
    [('logic', 'package module mymodel/features.py changed (sha256 aaaaaaaaaaaa… -> bbbbbbbbbbbb…)'), ('logic', 'package module mymodel/util.py added')]
    """
    for module, before, after in _changed(old, new):
        if before is _MISSING:
            yield "logic", f"package module {__package__}/{module} added"
        elif after is _MISSING:
            yield "logic", f"package module {__package__}/{module} removed"
        else:
            yield "logic", f"package module {__package__}/{module} changed (sha256 {_show(before)} -> {_show(after)})"


def _requirement_changes(old: Mapping[str, str], new: Mapping[str, str]) -> Iterator[str]:
    """Distributions one build requires and the other does not; nothing when either recorded none.

    >>> list(_requirement_changes({"numpy": ">=2.4,<3", "scipy": ">=1.17,<2"}, {"numpy": ">=2.4,<3", "lightgbm": ">=4.7,<4.8"}))
    ['requirement lightgbm>=4.7,<4.8 added (installing the package installs it)', 'requirement scipy>=1.17,<2 dropped (no longer needed)']
    """
    if not old or not new:
        return
    for name in sorted(set(old) | set(new)):
        if name not in old:
            yield f"requirement {name}{new[name]} added (installing the package installs it)"
        elif name not in new:
            yield f"requirement {name}{old[name]} dropped (no longer needed)"


def _model_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Changes that belong to one model: its outputs, estimator, parameters, metrics."""
    if old.get("classes") != new.get("classes"):
        yield "interface", f"classes {old.get('classes')} -> {new.get('classes')} (prediction and probability columns)"
    if old.get("estimator") != new.get("estimator"):
        yield "logic", f"estimator class {_arrow(old, new, 'estimator')}"
    if old.get("factory") != new.get("factory"):
        yield "logic", f"factory {_arrow(old, new, 'factory')}"
    params = list(_changed(old.get("params", {}), new.get("params", {})))
    # A wrapped estimator's parameters are recorded twice: as the estimator's repr and as
    # estimator__<name> entries. The entries say what changed; the repr only when its class did.
    wrapping = {key.rsplit("__", depth)[0] for key, _, _ in params for depth in range(1, key.count("__") + 1)}
    for param, before, after in params:
        if not (param in wrapping and _class_name(before) == _class_name(after)):
            yield "logic", f"{param} {_show(before)} -> {_show(after)}"
    yield from _onnx_changes(old.get("onnx"), new.get("onnx"))
    yield from _fit_changes(old.get("fit"), new.get("fit"))
    for key in sorted((set(old) | set(new)) - _KNOWN_KEYS):
        if old.get(key, _MISSING) != new.get(key, _MISSING):
            yield "logic", f"{key} changed"
    for metric, before, after in _changed(old.get("metrics", {}), new.get("metrics", {})):
        change = f" ({after - before:+.4f})" if _number(before) and _number(after) else ""
        yield "metrics", f"{metric} {_show(before)} -> {_show(after)}{change}"
    yield from _per_class_changes(old.get(PER_CLASS_KEY, {}), new.get(PER_CLASS_KEY, {}))


def _per_class_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """One line for the classes whose precision, recall, F1 or support moved (the compare page shows the numbers).

    >>> list(_per_class_changes({"0": {"recall": 0.8}, "1": {"recall": 0.7}}, {"0": {"recall": 0.8}, "1": {"recall": 0.75}}))
    [('metrics', "per-class metrics changed for class '1'")]
    >>> list(_per_class_changes({}, {"0": {"recall": 0.8}}))
    []
    """
    if not old or not new:
        return  # a build from before per-class metrics: nothing to compare with
    changed = [label for label, _, _ in _changed(old, new)]
    if changed:
        yield "metrics", f"per-class metrics changed for class{'es' if len(changed) > 1 else ''} {_listed(changed)}"


def _fit_changes(old: Any, new: Any) -> Iterator[tuple[str, str]]:
    """A model's fit function (metadata "fit": function, params, recorded): the function and its keys are
    logic; what it recorded (a best iteration) is a result, as metrics are.

    >>> list(_fit_changes({"function": "training:fit", "params": {"stopping_rounds": 20}, "recorded": {"best_iteration": 80}},
    ...                   {"function": "training:fit", "params": {"stopping_rounds": 50}, "recorded": {"best_iteration": 95}}))
    [('logic', 'fit_stopping_rounds 20 -> 50'), ('metrics', 'fit recorded best_iteration 80 -> 95')]
    >>> list(_fit_changes(None, {"function": "training:fit"}))
    [('logic', 'fit function (none) -> training:fit')]
    """
    old, new = (value if isinstance(value, Mapping) else {} for value in (old, new))
    if old.get("function") != new.get("function"):
        yield "logic", f"fit function {_arrow(old, new, 'function')}"
    for key, before, after in _changed(_mapping(old.get("params")), _mapping(new.get("params"))):
        yield "logic", f"fit_{key} {_show(before)} -> {_show(after)}"
    for key, before, after in _changed(_mapping(old.get("recorded")), _mapping(new.get("recorded"))):
        yield "metrics", f"fit recorded {key} {_show(before)} -> {_show(after)}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _onnx_changes(old: Any, new: Any) -> Iterator[tuple[str, str]]:
    """A model's ONNX status (metadata "onnx", pipeline/steps/onnx_export.py). Losing the ONNX copy is an interface
    change (whoever runs model.onnx finds none); gaining it, or another reason, a logic change.

    >>> list(_onnx_changes({"status": "converted"}, {"status": "not converted", "reason": "no converter for X"}))
    [('interface', 'ONNX converted -> not converted (no converter for X)')]
    >>> list(_onnx_changes(None, {"status": "converted"})), list(_onnx_changes({"status": "converted"}, {"status": "converted"}))
    ([('logic', 'ONNX (none) -> converted')], [])
    """
    def shown(record: Any) -> str:
        if not isinstance(record, Mapping):
            return "(none)"
        reason = record.get("reason")
        return f"{record.get('status')}" + (f" ({reason})" if reason else "")

    before, after = shown(old), shown(new)
    if before != after:
        lost = isinstance(old, Mapping) and old.get("status") == "converted"
        yield "interface" if lost else "logic", f"ONNX {before} -> {after}"


def _schema_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    old_columns = {c["name"]: c for c in old.get("columns", [])}
    new_columns = {c["name"]: c for c in new.get("columns", [])}
    ignores_unknown = new.get("unseen_categories") == "ignore"
    for name in old_columns:
        if name not in new_columns:
            yield "interface", f"input column {name!r} removed"
    for name in new_columns:
        if name not in old_columns:
            yield "interface", f"input column {name!r} added"
    for name in (n for n in old_columns if n in new_columns):
        before, after = old_columns[name], new_columns[name]
        if before.get("dtype") != after.get("dtype"):
            yield "interface", f"input column {name!r} dtype {before.get('dtype')} -> {after.get('dtype')}"
            continue
        if before.get("allows_missing", True) and not after.get("allows_missing", True):
            yield "interface", f"input column {name!r} no longer accepts missing values"
        elif not before.get("allows_missing", True) and after.get("allows_missing", True):
            yield "logic", f"input column {name!r} now accepts missing values"
        seen_before, seen_after = before.get("categories", []), after.get("categories", [])
        added = [c for c in seen_after if c not in seen_before]
        gone = [c for c in seen_before if c not in seen_after]
        if added:
            yield "logic", f"input column {name!r}: new categories {_listed(added)}"
        if gone:
            # A caller may still send a category the model no longer saw: harmless only if unknowns are ignored.
            yield (("logic", f"input column {name!r}: categories no longer seen {_listed(gone)} (ignored as unknown)")
                   if ignores_unknown else
                   ("interface", f"input column {name!r}: categories no longer accepted {_listed(gone)}"))
    if old.get("unseen_categories") != new.get("unseen_categories"):
        group = "logic" if ignores_unknown else "interface"
        yield group, f"unseen categories {_arrow(old, new, 'unseen_categories')}"


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """(key, old value, new value) for each key whose value differs, by key; _MISSING where absent."""
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, _MISSING), new.get(key, _MISSING)
        if before != after:
            yield key, before, after


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"split": {"seed": 0}} -> {"split.seed": 0}"""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _arrow(old: Mapping[str, Any], new: Mapping[str, Any], key: str) -> str:
    return f"{_show(old.get(key, _MISSING))} -> {_show(new.get(key, _MISSING))}"


def _class_name(value: Any) -> Any:
    """``SVC`` for the repr ``SVC(random_state=0)``; any other value as it is."""
    return value.partition("(")[0] if isinstance(value, str) else value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"  # a sha256: its start tells versions apart
    return str(value)


def _listed(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:5])
    return shown + (f" and {len(values) - 5} more" if len(values) > 5 else "")
