"""Every key of dataset.toml, declared once: its table, type, default, allowed values, an example and
what it does.

``pipeline/config.py`` reads dataset.toml through this table (defaults, allowed values, required
keys: a key it reads must be declared here), ``pipeline/steps/model_specs.py`` checks the
``[models.<Name>]`` tables with the same key names, and ``make docs`` writes the reference page
(docs/reference/dataset-toml.md) from it, so the page cannot drift from what is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.package.package_name import DEFAULT_PACKAGE
from pipeline.steps.model_specs import (
    CALIBRATED_KEY, ESTIMATOR_KEY, ESTIMATORS, FACTORY_ARGUMENTS, FACTORY_KEY, FIT_ARGUMENTS, FIT_KEY, FIT_PREFIX, SEED,
)

CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)  # [dataset] task, the first the default
# The release gate: each task's own held-out metrics it can compare (pipeline/steps/metrics.py computes them;
# those of [evaluation] metrics may be gated too), and which of them are better lower.
GATE_METRICS = {CLASSIFICATION: ("accuracy", "roc_auc", "f1", "log_loss"), REGRESSION: ("r2", "rmse", "mae")}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
DEFAULT_GATE_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "r2"}
DEFAULT_MAX_DROP = 0.01
TITANIC_SOURCE = "openml-titanic"
# A team metric whose second parameter has one of these names is given the probabilities, else the predictions.
PROBABILITY_PARAMETERS = ("proba", "y_proba", "probabilities", "y_score")
# ONNX copies of the models (pipeline/steps/onnx_export.py): [release] onnx = one of ONNX_POLICIES, the
# first the default; the agreement with scikit-learn each task needs on every held-out row
# (probabilities: absolute; regression: relative, absolute below 1), replaced by [release] onnx_tolerance.
ONNX_POLICIES = ("optional", "required", "off")
ONNX_TOLERANCE = {CLASSIFICATION: 1e-5, REGRESSION: 1e-6}

REQUIRED = object()  # the default of a key that has none: leaving it out is an error
UNSET = object()  # the default of an optional key with no value (the code decides, e.g. from the task)
MODELS = "models.<Name>"  # how the reference names every [models.<Name>] table


@dataclass(frozen=True)
class Key:
    """One key of dataset.toml. ``default``: the value when the key is left out (REQUIRED: none, it
    must be given; UNSET: nothing, ``default_text`` says what happens); ``allowed``: the values
    accepted, in words, when not every value of ``type`` is."""

    table: str
    name: str
    type: str
    description: str
    example: str  # a TOML line under [table]
    default: Any = UNSET
    allowed: str = ""
    default_text: str = ""  # the default in words, when it is not one value

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def _listed(values) -> str:
    return ", ".join(f'`"{value}"`' for value in values)


KEYS = (
    Key("package", "name", "string", "The model package's name: `pip install <name>`, `import <import name>` "
        "(the name with `_` for `-`). Set it with `make rename NAME=...`, which also moves `src/<import name>/`.",
        'name = "titanic-survival"', DEFAULT_PACKAGE,
        "a package name (letters, digits and `-_.` between them) whose import name Python can import, that "
        "shadows no standard-library, repository or installed module and ends in neither `-onnx` nor `-data`"),
    Key("dataset", "source", "string", "Where the training data comes from: the built-in Titanic passenger list, "
        "a CSV or Parquet file, a folder or glob of them (relative to the repository root; read in the order of "
        "their names), your own loader, or a data package this clone released. Whatever the source, the data is "
        "hashed in one canonical form and published as Parquet. `DATA_FILE=` replaces it for one run.",
        'source = "data/passengers.parquet"', REQUIRED,
        f'`"{TITANIC_SOURCE}"` (OpenML 40945, read offline from the scikit-learn wheel); a `.csv` or Parquet '
        'file (known by its first bytes); a folder of `.parquet` or `.csv` files (one kind); a glob '
        '(`"data/2026-*.parquet"`); `"<module>:<function>"`, a function of `src/<import name>/<module>.py` '
        'called with no arguments from the repository root and returning a pandas DataFrame; or '
        '`"<package>-data==X.Y.Z+tag"`'),
    Key("dataset", "tag", "string", "The data tag: the PEP 440 local label of every release "
        "(`1.1.1+titanic`). `DATA=` replaces it for one run.", 'tag = "titanic"', REQUIRED,
        "a canonical PEP 440 local label: lower-case letters and digits in parts joined by `.` "
        "(`Titanic_v2` is refused with the hint `titanic.v2`)"),
    Key("dataset", "target", "string", "The column the models predict.", 'target = "survived"', REQUIRED,
        "a column of the data"),
    Key("dataset", "task", "string", "What the models do. Without it, a numeric target with more than 20 "
        "distinct values is refused with the hint `task = \"regression\"`.", 'task = "regression"',
        CLASSIFICATION, _listed(TASKS)),
    Key("dataset", "numeric_features", "array of strings", "Input columns read as numbers (median-imputed; "
        "scaled for models that are not trees).", 'numeric_features = ["pclass", "age", "sibsp", "parch", "fare"]',
        (), "columns of the data"),
    Key("dataset", "categorical_features", "array of strings", "Input columns read as categories "
        "(most-frequent-imputed, one-hot encoded; unseen categories are ignored at prediction).",
        'categorical_features = ["sex", "embarked"]', (), "columns of the data"),
    Key("dataset", "target_units", "string", "What a regression predicts in, shown in the model card and "
        "`python -m <name> info`; part of the output contract.", 'target_units = "progression points"',
        default_text="none"),
    Key("dataset", "publish", "boolean", "Publish the training data file as `<package>-data`, which the models "
        "pin, so any version rebuilds from the index alone. `false` keeps the data off the index: the models "
        "record its sha256 only.", "publish = false", True),
    Key("training", "test_size", "float", "The share of rows held out for evaluation and the release gate.",
        "test_size = 0.2", 0.25, "above 0 and below 1"),
    Key("training", "seed", "integer", "The seed of the split and of every `random_state = \"seed\"`.",
        "seed = 42", 0),
    Key("training", "cv_folds", "integer", "Cross-validation folds on the training rows (stratified for a "
        "classification, shuffled for a regression).", "cv_folds = 10", 5, "2 or more"),
    Key("release", "gate_metric", "string", "The held-out metric the release gate compares with the highest "
        "published version's.", 'gate_metric = "f1"',
        default_text=", ".join(f"`{DEFAULT_GATE_METRIC[task]}` for a {task}" for task in TASKS),
        allowed="; ".join(f"{task}: {_listed(GATE_METRICS[task])}" for task in TASKS)
        + "; or any name of `[evaluation] metrics` (`\"f1_macro\"`, `\"metrics:cost\"`), in its direction"),
    Key("release", "max_drop", "float", "The largest drop of a higher-is-better gate metric "
        f"({', '.join(m for task in TASKS for m in GATE_METRICS[task] if m not in LOWER_IS_BETTER)}) a "
        "release may show; `FORCE=1` releases anyway and records it.", "max_drop = 0.02", DEFAULT_MAX_DROP,
        "0 or more"),
    Key("release", "max_increase", "float", "The largest increase of a lower-is-better gate metric "
        f"({', '.join(sorted(LOWER_IS_BETTER))}, or a team metric listed in `[evaluation] lower_is_better`) a "
        "release may show, in the metric's units; required with such a metric.", "max_increase = 1.0",
        default_text="none: required when the gate metric is lower-is-better",
        allowed="0 or more"),
    Key("release", "max_accuracy_drop", "float", "The older name of `max_drop` for the accuracy gate.",
        "max_accuracy_drop = 0.01", DEFAULT_MAX_DROP, "0 or more; only with the accuracy gate"),
    Key("release", "onnx", "string", "The ONNX copies: `optional` ships a model that does not convert (or "
        "disagrees) without ONNX, `required` fails the release instead, `off` converts nothing.",
        'onnx = "required"', ONNX_POLICIES[0], _listed(ONNX_POLICIES)),
    Key("release", "onnx_tolerance", "float", "How far an ONNX copy's outputs may differ from scikit-learn's "
        "on every held-out row (probabilities: absolute; regression: relative, absolute below 1).",
        "onnx_tolerance = 1e-4",
        default_text=", ".join(f"`{ONNX_TOLERANCE[task]:g}` for a {task}" for task in TASKS),
        allowed="above 0 and below 1"),
    Key("evaluation", "metrics", "array of strings", "The team's held-out metrics, beside the task's own: each "
        "is computed on the held-out rows, recorded in every model's metadata and shown by `make versions`, "
        "`make diff`, the model card and the registry page; any of them may be the `gate_metric`. A team "
        "function is called with the held-out targets and the predictions, or the probabilities (a DataFrame "
        f"with a column per class) when its second parameter is named {_listed(PROBABILITY_PARAMETERS)}, and "
        "returns a number. A classification also records precision, recall, F1 and support per class.",
        'metrics = ["f1_macro", "balanced_accuracy"]', (),
        "scikit-learn scorer names (`sklearn.metrics.get_scorer_names()`: `\"f1_macro\"`, "
        "`\"neg_mean_absolute_error\"`), the task's own metrics, or `\"<module>:<function>\"` of "
        "`src/<import name>/<module>.py`"),
    Key("evaluation", "lower_is_better", "array of strings", "The team functions of `metrics` for which lower "
        "is better (a cost); every other metric is higher-is-better, as scikit-learn's scorers are (their error "
        "metrics are negated: `neg_log_loss`).", 'lower_is_better = ["metrics:cost"]', (),
        "team functions listed in `metrics`"),
    Key(MODELS, ESTIMATOR_KEY, "string", "The model's estimator class; every key of the table but `estimator`, "
        f"`factory`, `calibrated`, `{FIT_KEY}` and `{FIT_PREFIX}*` is one of its hyperparameters, by its "
        f'scikit-learn name, checked before training (`random_state = "{SEED}"` means the `[training]` seed; a '
        "near miss of a named hyperparameter is refused with the name it resembles, a keyword the class takes "
        "through `**kwargs`, such as LightGBM's `verbose = -1`, is passed on).", 'estimator = "RandomForestClassifier"',
        default_text="none: `estimator` or `factory` is required",
        allowed=f"{', '.join(f'`{name}`' for name in ESTIMATORS)} (those of the task), or any class with the "
        'scikit-learn estimator API by import path (`"lightgbm.LGBMClassifier"`)'),
    Key(MODELS, FACTORY_KEY, "string", "Instead of `estimator`: a function of a module you add to the package, "
        f"called with {', '.join(f'`{name}`' for name in FACTORY_ARGUMENTS)} and the table's other keys; it returns "
        "the whole unfitted estimator or Pipeline, preprocessing included.", 'factory = "features:make_pipeline"',
        default_text="none", allowed='`"<module>:<function>"` of `src/<import name>/<module>.py`'),
    Key(MODELS, FIT_KEY, "string", "Fit the model with your own function instead of `estimator.fit(X, y)`: "
        "the pipeline builds the estimator as the table says (`estimator` or `factory`), then calls the function "
        f"with {', '.join(f'`{name}`' for name in FIT_ARGUMENTS)} (the training rows only: the held-out rows stay "
        f"with the pipeline; the same for each cross-validation fold) and the table's `{FIT_PREFIX}*` keys. It "
        "returns the fitted estimator, or the estimator and a dict of facts to record (`best_iteration`), which "
        "the model's metadata and `make diff` show.", f'{FIT_KEY} = "training:fit"', default_text="none",
        allowed='`"<module>:<function>"` of `src/<import name>/<module>.py`'),
    Key(MODELS, f"{FIT_PREFIX}<name>", "any", f"With `{FIT_KEY}`: passed to the fit function as the keyword "
        f"`<name>` (`{FIT_PREFIX}stopping_rounds = 20` is `stopping_rounds=20`), recorded in the model's "
        f"metadata. Without `{FIT_KEY}`, a key such as `fit_intercept` is a hyperparameter as any other.",
        f"{FIT_PREFIX}stopping_rounds = 20", default_text="none",
        allowed=f"any name but {', '.join(f'`{name}`' for name in FIT_ARGUMENTS)}"),
    Key(MODELS, CALIBRATED_KEY, "boolean", "Wrap the classifier in `CalibratedClassifierCV(ensemble=False)`, "
        "which gives probabilities to one without them (SVC).", "calibrated = true", False, "classifiers only"),
)
_BY_NAME = {(key.table, key.name): key for key in KEYS}
TABLES = tuple(dict.fromkeys(key.table for key in KEYS))


def key(table: str, name: str) -> Key:
    """The declared key; a key the code reads but this table lacks is a bug, not a user's error."""
    return _BY_NAME[(table, name)]


def names(table: str) -> tuple[str, ...]:
    """The keys declared for ``[table]``, in their order.

    >>> names("evaluation")
    ('metrics', 'lower_is_better')
    """
    return tuple(key.name for key in KEYS if key.table == table)


def setting(values: dict, table: str, name: str, default: Any = UNSET) -> Any:
    """``name`` of the ``[table]`` values read from dataset.toml, or its declared default (``default``
    when the declared one depends on something else, e.g. the task). A required key left out raises
    KeyError with the key's name; UNSET means left out with no default."""
    declared = key(table, name)
    if name in values:
        return values[name]
    if declared.required:
        raise KeyError(name)
    return declared.default if default is UNSET else default
