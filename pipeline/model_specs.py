"""The models a release ships, as dataset.toml declares them in [models.<Name>] tables.

Each table names an estimator from ESTIMATORS and its hyperparameters. Reading a
table checks its shape without scikit-learn; ``check`` then builds every estimator
(scikit-learn imported on first use) so a bad name or value stops the run before
any training, naming the key.
"""

from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

# The estimators a [models.<Name>] table may name, with their modules: the one list
# to extend. Classifiers serve task = "classification", regressors task = "regression".
ESTIMATORS = {
    "DecisionTreeClassifier": "sklearn.tree",
    "ExtraTreesClassifier": "sklearn.ensemble",
    "GradientBoostingClassifier": "sklearn.ensemble",
    "HistGradientBoostingClassifier": "sklearn.ensemble",
    "KNeighborsClassifier": "sklearn.neighbors",
    "LogisticRegression": "sklearn.linear_model",
    "RandomForestClassifier": "sklearn.ensemble",
    "SVC": "sklearn.svm",
    "DecisionTreeRegressor": "sklearn.tree",
    "ElasticNet": "sklearn.linear_model",
    "ExtraTreesRegressor": "sklearn.ensemble",
    "GradientBoostingRegressor": "sklearn.ensemble",
    "HistGradientBoostingRegressor": "sklearn.ensemble",
    "KNeighborsRegressor": "sklearn.neighbors",
    "Lasso": "sklearn.linear_model",
    "LinearRegression": "sklearn.linear_model",
    "RandomForestRegressor": "sklearn.ensemble",
    "Ridge": "sklearn.linear_model",
    "SVR": "sklearn.svm",
}
# Kernel methods: training time (and memory) grows with the square of the rows.
QUADRATIC = {"SVC", "SVR"}
LARGE_DATA_ROWS = 50_000  # from here a quadratic model takes hours: warn before training
ESTIMATOR_KEY = "estimator"
CALIBRATED_KEY = "calibrated"  # wrap in CalibratedClassifierCV(ensemble=False): probabilities for any classifier
SEED = "seed"  # random_state = "seed" means the [training] seed
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")  # a folder in the package: src/mymodel/models/<Name>


@dataclass(frozen=True)
class ModelSpec:
    """One [models.<Name>] table: the model's name in the package, its estimator and hyperparameters."""

    name: str
    estimator: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    calibrated: bool = False

    def key(self, suffix: str = "") -> str:
        """How dataset.toml spells this table (or one of its keys) in messages."""
        return f"models.{self.name}" + (f".{suffix}" if suffix else "")

    def build(self, seed: int) -> Any:
        """A fresh, unfitted scikit-learn estimator as the table declares it."""
        estimator = estimator_class(self.estimator)(**self.resolved(seed))
        if self.calibrated:
            from sklearn.calibration import CalibratedClassifierCV

            estimator = CalibratedClassifierCV(estimator, ensemble=False)
        return estimator

    def resolved(self, seed: int) -> dict[str, Any]:
        """The hyperparameters with random_state = "seed" replaced by the [training] seed.

        >>> ModelSpec("Forest", "RandomForestClassifier", {"n_estimators": 300, "random_state": "seed"}).resolved(7)
        {'n_estimators': 300, 'random_state': 7}
        """
        return {k: seed if (k == "random_state" and v == SEED) else v for k, v in self.params.items()}


def estimator_class(name: str) -> type:
    return getattr(importlib.import_module(ESTIMATORS[name]), name)


def task_of(estimator: str) -> str:
    """The task an allowed estimator serves: "regression" or "classification"."""
    from sklearn.base import is_regressor

    return "regression" if is_regressor(estimator_class(estimator)()) else "classification"


def parse(models: Any, path: Path) -> tuple[ModelSpec, ...]:
    """The [models] section of dataset.toml as ModelSpecs, in the file's order."""
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{path}: [models] declares no model; add a [models.<Name>] table with an "
                          f"estimator = one of {', '.join(ESTIMATORS)}, or delete [models] for the default models")
    return tuple(_parse_table(name, table, path) for name, table in models.items())


def _parse_table(name: str, table: Any, path: Path) -> ModelSpec:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: models.{name} must be a table ([models.{name}] with an estimator key); "
                          "see the comments in dataset.toml")
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{path}: [models.{name}]: a model name is a folder in the package; "
                          "use letters, digits, '_' and '-', starting with a letter")
    params = dict(table)
    estimator = params.pop(ESTIMATOR_KEY, None)
    if estimator is None:
        raise ConfigError(f"{path}: [models.{name}] needs the key 'estimator' (the scikit-learn class); "
                          f"add estimator = one of {', '.join(ESTIMATORS)}")
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ConfigError(f"{path}: models.{name}.estimator = {estimator!r} is not an allowed estimator; "
                          f"use one of {', '.join(ESTIMATORS)}")
    calibrated = params.pop(CALIBRATED_KEY, False)
    if not isinstance(calibrated, bool):
        raise ConfigError(f"{path}: models.{name}.calibrated = {calibrated!r} must be true or false")
    return ModelSpec(name, estimator, params, calibrated)


def check(specs: tuple[ModelSpec, ...], seed: int, path: Path, task: str = "classification") -> None:
    """Build every model as training will, so a bad parameter or an estimator of the other
    task fails now, naming its key."""
    from sklearn.utils._param_validation import InvalidParameterError

    for spec in specs:
        cls = estimator_class(spec.estimator)
        kind = task_of(spec.estimator)
        if kind != task:
            fitting = [name for name in ESTIMATORS if task_of(name) == task]
            raise ConfigError(f"{path}: {spec.key('estimator')} = {spec.estimator!r} is for {kind}, but [dataset] task = "
                              f"{task!r}; use one of {', '.join(fitting)} (or set task = {kind!r})")
        if spec.calibrated and task != "classification":
            raise ConfigError(f"{path}: {spec.key(CALIBRATED_KEY)} applies to classifiers only; remove it from [{spec.key()}]")
        defaults = cls().get_params()
        valid = sorted(defaults)
        for key, value in spec.resolved(seed).items():
            if key not in valid:
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise ConfigError(f"{path}: {spec.key(key)} is not a parameter of {spec.estimator}; "
                                  f"{hint}its parameters: {', '.join(valid)}")
            if isinstance(value, bool) and not isinstance(defaults[key], (bool, type(None))):
                # scikit-learn takes True for an int (n_estimators = true would be 1 tree)
                raise ConfigError(f"{path}: {spec.key(key)} = {str(value).lower()} is a boolean; "
                                  f"{spec.estimator} expects a value like its default {defaults[key]!r}")
            try:  # one key at a time (the others at their defaults) to name the bad one
                cls(**{key: value})._validate_params()
            except InvalidParameterError as exc:
                raise ConfigError(f"{path}: {spec.key(key)} = {value!r} is invalid ({str(exc).rstrip('.')}); fix the value") from None
        estimator = spec.build(seed)
        if task == "classification" and not hasattr(estimator, "predict_proba"):
            raise ConfigError(f"{path}: {spec.key()} ({spec.estimator}) gives no probabilities, which evaluation "
                              f"and mymodel.predict_proba need; add calibrated = true to [{spec.key()}]")


def large_data_warnings(specs: tuple[ModelSpec, ...], rows: int) -> list[str]:
    """Models that will be slow on ``rows`` rows, with what to do about it.

    >>> print(*large_data_warnings((ModelSpec("SVC", "SVC", {}, calibrated=True),), 1_000_000))
    warning: [models.SVC] (SVC) trains in time that grows with the square of the rows; at 1,000,000 rows it may take hours: delete its table from dataset.toml, or use HistGradientBoostingClassifier or LogisticRegression
    >>> large_data_warnings((ModelSpec("SVC", "SVC", {}),), 1309)
    []
    """
    if rows < LARGE_DATA_ROWS:
        return []
    return [f"warning: [{spec.key()}] ({spec.estimator}) trains in time that grows with the square of the rows; "
            f"at {rows:,} rows it may take hours: delete its table from dataset.toml, or use "
            f"{'HistGradientBoostingRegressor or Ridge' if spec.estimator == 'SVR' else 'HistGradientBoostingClassifier or LogisticRegression'}"
            for spec in specs if spec.estimator in QUADRATIC]
