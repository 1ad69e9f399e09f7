"""The held-out metrics: each task's own and the team's (``[evaluation] metrics``).

``[evaluation] metrics`` lists scikit-learn scorer names (``"f1_macro"``, ``"balanced_accuracy"``,
``"neg_mean_absolute_error"``: sklearn.metrics.get_scorer_names()) and team functions by
``"<module>:<function>"`` of the package folder. A team function is called with the held-out
targets and either the predictions (``def cost(y_true, y_pred)``) or, for a classifier, the
probabilities (``def cost(y_true, proba)``: a DataFrame with a column per class), as the name of
its second parameter says, and returns a number. Higher is better, as for scikit-learn's scorers
(their error metrics are negated), unless ``[evaluation] lower_is_better`` lists it. Each is
recorded under ``metrics`` in every model's metadata.json, beside the task's own; a
classification also records precision, recall, F1 and support for each class (``per_class``:
pipeline/steps/evaluation.py computes them, with the numbers of the figures).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import dataset_keys
from pipeline.dataset_keys import LOWER_IS_BETTER, PROBABILITY_PARAMETERS, REGRESSION, setting
from pipeline.errors import ConfigError, TrainingError
from pipeline.steps.team_functions import is_reference, module_file, one_line, team_function

# Each task's own held-out metrics (computed by ``task_metrics``; LOWER_IS_BETTER: those better lower).
TASK_METRICS = dataset_keys.GATE_METRICS
NAME_LIMIT = 100  # characters of a metric's name


@dataclass(frozen=True)
class Metric:
    """One entry of ``[evaluation] metrics``."""

    name: str  # a scorer name or "<module>:<function>"
    lower_is_better: bool = False

    @property
    def team(self) -> bool:
        return is_reference(self.name)


def parse(evaluation: Any, task: str, path: Path) -> tuple[Metric, ...]:
    """``[evaluation]`` of dataset.toml, checked: every name is a scorer or a team function that exists."""
    if not isinstance(evaluation, dict):
        raise ConfigError(f"{path}: [evaluation] must be a table ([evaluation] with metrics = [...])")
    declared = dataset_keys.names("evaluation")
    unknown = sorted(set(evaluation) - set(declared))
    if unknown:
        raise ConfigError(f"{path}: [evaluation] has no key {unknown[0]!r}; it takes "
                          + " and ".join(f"{name} = [...]" for name in declared))
    names, lower = (setting(evaluation, "evaluation", name) for name in ("metrics", "lower_is_better"))
    for key, value in (("metrics", names), ("lower_is_better", lower)):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: [evaluation] {key} = {value!r} must be a list of names, "
                              f'e.g. {key} = ["f1_macro", "metrics:cost"]')
    for name in lower:
        if name not in names:
            raise ConfigError(f"{path}: [evaluation] lower_is_better names {name!r}, which metrics does not list; "
                              "add it to metrics or remove it")
        if not is_reference(name):
            raise ConfigError(f"{path}: [evaluation] lower_is_better = [{name!r}]: only a team function's direction "
                              "is declared; scikit-learn's scorers are higher-is-better (their error metrics are "
                              "negated, e.g. neg_log_loss), and the task's own metrics have theirs")
    metrics = []
    for name in dict.fromkeys(names):
        _check_name(name, task, path)
        metrics.append(Metric(name, name in lower))
    return tuple(metrics)


def _check_name(name: str, task: str, path: Path) -> None:
    key = f"{path}: [evaluation] metrics: {name!r}"
    if len(name) > NAME_LIMIT:
        raise ConfigError(f"{key[:NAME_LIMIT]}…: a metric's name has at most {NAME_LIMIT} characters")
    if name in TASK_METRICS[task]:
        return
    if is_reference(name):
        second = _second_parameter(team_function(name, key, f"{name.partition(':')[2]}(y_true, y_pred)", ConfigError),
                                   key)
        if second in PROBABILITY_PARAMETERS and task == REGRESSION:
            raise ConfigError(f"{key} takes {second}, but a regression gives no probabilities; "
                              f"define def {name.partition(':')[2]}(y_true, y_pred)")
        return
    from sklearn.metrics import get_scorer_names

    import difflib

    known = get_scorer_names()
    if name not in known:
        close = difflib.get_close_matches(name, [*known, *TASK_METRICS[task]], n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"{key} is neither a scikit-learn scorer nor a team function; {hint}use a name of "
                          "sklearn.metrics.get_scorer_names() or \"<module>:<function>\" of the package folder")


def _second_parameter(function: Callable, key: str) -> str:
    try:
        parameters = [p for p in inspect.signature(function).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return "y_pred"
    if len(parameters) < 2:
        raise ConfigError(f"{key} takes {len(parameters)} argument{'s' * (len(parameters) != 1)}; define it with "
                          "two: (y_true, y_pred) or, for probabilities, (y_true, proba)")
    return parameters[1].name


def task_metrics(pipeline: Any, X, y, task: str, only: tuple[str, ...] | None = None) -> dict[str, float]:
    """The held-out metrics of ``task`` (or ``only`` those). A binary classification scores F1 and
    ROC AUC for its last class; a multiclass one averages F1 over classes (macro) and ROC AUC one-vs-rest (macro)."""
    from sklearn.metrics import (
        accuracy_score, f1_score, log_loss, mean_absolute_error, r2_score, roc_auc_score, root_mean_squared_error,
    )

    predicted = pipeline.predict(X)
    if task == REGRESSION:
        scorers = {"r2": lambda: r2_score(y, predicted), "mae": lambda: mean_absolute_error(y, predicted),
                   "rmse": lambda: root_mean_squared_error(y, predicted)}
    else:
        classes, probabilities = pipeline.classes_, pipeline.predict_proba(X)
        binary = len(classes) == 2
        scorers = {
            "accuracy": lambda: accuracy_score(y, predicted),
            "roc_auc": (lambda: roc_auc_score(y == classes[-1], probabilities[:, -1])) if binary else
                       (lambda: roc_auc_score(y, probabilities, multi_class="ovr", average="macro", labels=classes)),
            "f1": (lambda: f1_score(y, predicted, pos_label=classes[-1])) if binary else
                  (lambda: f1_score(y, predicted, average="macro", labels=classes)),
            "log_loss": lambda: log_loss(y, probabilities, labels=classes),
        }
    return {name: rounded(scorers[name]()) for name in (only or scorers) if name in scorers}


def declared_metrics(pipeline: Any, X, y, task: str, metrics: tuple[Metric, ...], model: str) -> dict[str, float]:
    """The values of the team's ``metrics`` that are not the task's own, for the model named ``model``."""
    values = {}
    for metric in metrics:
        if metric.name in TASK_METRICS[task]:
            continue
        try:
            value = _team_value(pipeline, X, y, metric) if metric.team else _scorer_value(pipeline, X, y, metric.name)
        except TrainingError:
            raise
        except Exception as exc:
            raise TrainingError(f"[evaluation] metrics: {metric.name!r} cannot score the model {model!r} "
                                f"({one_line(exc)}); {_fix(metric)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            raise TrainingError(f"[evaluation] metrics: {metric.name!r} gave {value!r} for the model {model!r}, not a "
                                f"finite number; {_fix(metric)}")
        values[metric.name] = rounded(value)
    return values


def _fix(metric: Metric) -> str:
    if metric.team:
        return f"fix the function in {module_file(None, metric.name.partition(':')[0])}"
    return ("use a scorer for this task and its labels (f1_macro rather than f1 for text labels), or a team "
            "function \"<module>:<function>\"")


def _scorer_value(pipeline: Any, X, y, name: str) -> float:
    from sklearn.metrics import get_scorer

    return float(get_scorer(name)(pipeline, X, y))


def _team_value(pipeline: Any, X, y, metric: Metric) -> Any:
    function = team_function(metric.name, f"[evaluation] metrics: {metric.name!r}", "metric(y_true, y_pred)",
                             TrainingError)
    if _second_parameter(function, metric.name) in PROBABILITY_PARAMETERS:
        import pandas as pd

        second = pd.DataFrame(pipeline.predict_proba(X), columns=[str(c) for c in pipeline.classes_], index=X.index)
    else:
        second = pipeline.predict(X)
    value = function(y, second)
    return value.item() if hasattr(value, "item") and getattr(value, "shape", None) == () else value


def lower_is_better(name: str, metrics: tuple[Metric, ...] = ()) -> bool:
    """Is a lower ``name`` better: a task's error metric, or a team metric declared so?

    >>> lower_is_better("rmse"), lower_is_better("f1_macro"), lower_is_better("m:cost", (Metric("m:cost", True),))
    (True, False, True)
    """
    return name in LOWER_IS_BETTER or any(m.name == name and m.lower_is_better for m in metrics)


def rounded(value: float) -> float:
    return round(float(value), 6)
