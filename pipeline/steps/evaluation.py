"""The numbers behind a model's evaluation figures, computed once on the held-out rows.

Training writes them to ``models/<name>/evaluation.json`` beside the model (shipped in the
wheel); the build draws the figures from that file alone (pipeline/steps/figures.py), so
``make verify`` redraws the same bytes from the same numbers. A classification records
its confusion matrix and, for each class shown (the positive class of a binary task,
every class one-vs-rest otherwise), the ROC, precision-recall and calibration curves; a
regression the actual and predicted values (at most MAX_PREDICTIONS rows); both the
permutation importance of each input column. Curves hold at most MAX_POINTS points and
every number is rounded: the file stays small whatever the number of rows.

The gate computes the published baseline's curves on the same rows with ``curves``; the
build records them under ``baseline`` in the new version's file. A classification's
precision, recall, F1 and support per class (``per_class``, recorded in metadata.json and
shown by the card, ``make diff`` and the registry pages) are computed here too, and kept
with the rest.
"""

from __future__ import annotations

import json

import numpy as np

from pipeline.config import CLASSIFICATION, REGRESSION
from pipeline.package.own_package import contract
from pipeline import cache

EVALUATION_FILE = "evaluation.json"
FORMAT = 1
MAX_POINTS = 200  # per curve: what a figure needs, not one point per row
MAX_PREDICTIONS = 500  # (actual, predicted) pairs a regression records
CALIBRATION_BINS = 10
IMPORTANCE_REPEATS = 5
IMPORTANCE_ROWS = 10_000  # rows each permutation repeat scores, at most
IMPORTANCE_SCORING = {CLASSIFICATION: "accuracy", REGRESSION: "r2"}


PER_CLASS_KEY = contract.PER_CLASS_KEY
CACHE_KIND = "evaluation"
PUBLISHED_LIMIT = 16 * 2**20  # the most of a published evaluation.json that is read (a build's are ~15 KB)


def evaluated(pipeline, X, y, task: str, seed: int, libraries: dict[str, str]) -> dict:
    """``{"evaluation": evaluation(...), "per_class": per_class(...)}`` (no per-class metrics for a regression), kept by
    the digest of the model's pickle, the rows, the settings and ``libraries`` (the training environment):
    a warm release scores no model twice."""
    import pandas as pd

    key = cache.digest([CACHE_KIND, cache.pickle_sha256(pipeline), cache.rows_sha256(X),
                        cache.rows_sha256(pd.Series(y).to_frame()), task, seed, libraries,
                        cache.code("pipeline/steps/evaluation.py")])
    kept = cache.recall(CACHE_KIND, key)
    if kept is not None and isinstance(kept.document.get("evaluation"), dict):
        return kept.document
    result = {"evaluation": evaluation(pipeline, X, y, task, seed)}
    if task != REGRESSION:
        result[PER_CLASS_KEY] = per_class(pipeline, X, y)
    cache.keep(CACHE_KIND, key, result)
    return result


def evaluation(pipeline, X, y, task: str, seed: int) -> dict:
    """Everything the figures of one model show, as plain JSON data."""
    numbers = {"format": FORMAT, "task": task, "rows": int(len(X))}
    if task == REGRESSION:
        numbers["predictions"] = predictions(np.asarray(y, dtype=float), pipeline.predict(X), seed)
    else:
        from sklearn.metrics import confusion_matrix

        classes = list(pipeline.classes_)
        numbers["classes"] = [str(c) for c in classes]
        numbers["confusion_matrix"] = confusion_matrix(y, pipeline.predict(X), labels=classes).tolist()
        numbers["curves"] = curves(pipeline, X, y)
    numbers["permutation_importance"] = importance(pipeline, X, y, task, seed)
    return numbers


def per_class(pipeline, X, y) -> dict[str, dict[str, float | int]]:
    """Precision, recall, F1 and support of each class a classifier predicts, on the held-out rows
    (metadata.json "per_class"): the one place they are computed."""
    from sklearn.metrics import precision_recall_fscore_support

    classes = list(pipeline.classes_)
    precision, recall, f1, support = precision_recall_fscore_support(y, pipeline.predict(X), labels=classes,
                                                                     zero_division=0)
    return {str(c): {"precision": _round(p), "recall": _round(r), "f1": _round(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)}


def curves(pipeline, X, y) -> dict[str, dict]:
    """ROC, precision-recall and calibration of each class shown, by class label (one-vs-rest)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    classes = list(pipeline.classes_)
    probabilities = pipeline.predict_proba(X)
    y = np.asarray(y)
    shown = classes[-1:] if len(classes) == 2 else classes
    out = {}
    for label in shown:
        truth = y == label
        if truth.all() or not truth.any():
            continue  # a class absent from (or alone in) these rows has no curve
        score = probabilities[:, classes.index(label)]
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        prob_true, prob_pred = calibration_curve(truth, score, n_bins=CALIBRATION_BINS)
        out[str(label)] = {
            "roc": {"fpr": _points(fpr), "tpr": _points(tpr), "auc": _round(roc_auc_score(truth, score))},
            "precision_recall": {"precision": _points(precision), "recall": _points(recall),
                                 "average_precision": _round(average_precision_score(truth, score)),
                                 "prevalence": _round(truth.mean())},
            "calibration": {"prob_true": _points(prob_true), "prob_pred": _points(prob_pred)},
        }
    return out


def predictions(actual: np.ndarray, predicted: np.ndarray, seed: int) -> dict:
    """(actual, predicted) of at most MAX_PREDICTIONS held-out rows, chosen by ``seed``."""
    rows = len(actual)
    chosen = np.arange(rows) if rows <= MAX_PREDICTIONS else \
        np.sort(np.random.default_rng(seed).choice(rows, MAX_PREDICTIONS, replace=False))
    return {"actual": [_round(v) for v in actual[chosen]],
            "predicted": [_round(v) for v in np.asarray(predicted)[chosen]], "of_rows": rows}


def importance(pipeline, X, y, task: str, seed: int) -> dict:
    """The drop of the task's score when one input column's values are shuffled (mean and spread over repeats)."""
    from sklearn.inspection import permutation_importance

    scoring = IMPORTANCE_SCORING[task]
    result = permutation_importance(pipeline, X, y, scoring=scoring, n_repeats=IMPORTANCE_REPEATS,
                                    random_state=seed, max_samples=min(len(X), IMPORTANCE_ROWS))
    return {"scoring": scoring, "repeats": IMPORTANCE_REPEATS,
            "columns": {str(column): {"mean": _round(mean), "std": _round(std)}
                        for column, mean, std in zip(X.columns, result.importances_mean, result.importances_std,
                                                     strict=True)}}


def _points(values) -> list[float]:
    """At most MAX_POINTS of ``values``, evenly spaced along the curve, its ends kept."""
    values = np.asarray(values, dtype=float)
    if len(values) > MAX_POINTS:
        values = values[np.unique(np.linspace(0, len(values) - 1, MAX_POINTS).round().astype(int))]
    return [_round(v) for v in values]


def _round(value) -> float:
    return round(float(value), 6)


def published(archive, package: str, model: str) -> dict | None:
    """``model``'s evaluation.json in a published wheel (an open zip), read with a bound and validated by the
    package's reader; None when the wheel has none (built before figures); MalformedBuild when it is malformed."""
    from pipeline.package.own_package import published as reader

    member, where = f"{package}/models/{model}/{EVALUATION_FILE}", f"{model}/{EVALUATION_FILE}"
    if member not in archive.namelist():
        return None
    try:
        with archive.open(member) as handle:
            raw = handle.read(PUBLISHED_LIMIT + 1)
    except reader.ARCHIVE_ERRORS as exc:
        raise reader.MalformedBuild(f"{where}: cannot be read from the archive ({exc})") from None
    if len(raw) > PUBLISHED_LIMIT:
        raise reader.MalformedBuild(f"{where}: larger than the {PUBLISHED_LIMIT:,} bytes that are read")
    return reader.check_evaluation(reader.parse(raw, where), where)
