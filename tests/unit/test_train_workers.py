"""Training runs its fits in worker processes, so scikit-learn's warning-filter swaps cannot race.

scikit-learn wraps every fit it parallelises (a forest's trees, cross-validation folds) in
``warnings.catch_warnings``, which replaces the process's filter list and puts it back on exit; it is
not thread-safe before Python 3.14. With the models' fits on threads of one process, two overlapping
swaps put back each other's emptied copy: the filters ended empty, and every later fit warned that
``sklearn.utils.parallel.delayed`` should be used with ``sklearn.utils.parallel.Parallel`` (thousands
of lines under load). RacingClassifier's fit does that swap, slowly, so two of them always overlap.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

import pipeline.steps.train
from pipeline.config import DATASET_CONFIG, load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.steps.train import train

PAUSE = 0.4


class RacingClassifier(ClassifierMixin, BaseEstimator):
    """A logistic regression whose fit swaps the warning filters as scikit-learn's parallel helpers do."""

    def __init__(self, pause: float = PAUSE) -> None:
        self.pause = pause

    def fit(self, X, y):
        with warnings.catch_warnings():
            warnings.resetwarnings()
            time.sleep(self.pause)
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def test_fits_in_parallel_leave_the_trainings_warning_filters_as_they_were(tmp_path, monkeypatch):
    text = DATASET_CONFIG.read_text(encoding="utf-8").split("\n[models.")[0]
    text = text.replace("cv_folds = 5", "cv_folds = 2").replace("[release]\n", '[release]\nonnx = "off"\n')
    tables = "".join(f'\n[models.{name}]\nestimator = "{__name__}.RacingClassifier"\n' for name in ("A", "B"))
    (tmp_path / "dataset.toml").write_text(text + tables, encoding="utf-8")
    config = load_dataset_config(tmp_path / "dataset.toml")
    monkeypatch.setattr(pipeline.steps.train, "TRAIN_JOBS", 2)
    monkeypatch.setattr(pipeline.steps.train, "CV_WORKERS_AFTER_S", 0.0)  # the folds in workers beside the fits
    before = list(warnings.filters)
    assert before, "pytest runs with warning filters"
    models = train(load_dataset(config), config)
    assert [m.name for m in models] == ["A", "B"] and all(m.metadata["metrics"]["accuracy"] > 0.7 for m in models)
    assert warnings.filters == before  # before: [] (the swaps on two threads put back an emptied copy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from sklearn.model_selection import cross_val_score

        cross_val_score(LogisticRegression(), np.arange(20.0).reshape(-1, 1), [0, 1] * 10, cv=2)
    assert not [w for w in caught if "delayed" in str(w.message)]


def _worker_processes() -> list[str]:
    """The command lines of this process's children that are joblib (loky) workers."""
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    lines = []
    for pid in children:
        with contextlib.suppress(OSError):
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return [line for line in lines if "popen_loky_posix" in line]  # not its resource tracker: it ends with us


def test_training_leaves_no_worker_process_holding_its_output(tmp_path, monkeypatch):
    """Before: the cross-validations' loky workers stayed idle for 300 s after training, holding the
    release's stdout and stderr; a release killed or failed after training kept its output open that long
    (test_faults waited 339 s for each killed release)."""
    text = DATASET_CONFIG.read_text(encoding="utf-8").split("\n[models.")[0]
    text = text.replace("cv_folds = 5", "cv_folds = 2").replace("[release]\n", '[release]\nonnx = "off"\n')
    tables = "".join(f'\n[models.{name}]\nestimator = "sklearn.linear_model.LogisticRegression"\n' for name in "AB")
    (tmp_path / "dataset.toml").write_text(text + tables, encoding="utf-8")
    config = load_dataset_config(tmp_path / "dataset.toml")
    monkeypatch.setattr(pipeline.steps.train, "TRAIN_JOBS", 2)
    monkeypatch.setattr(pipeline.steps.train, "CV_WORKERS_AFTER_S", 0.0)  # workers for these quick fits too
    models = train(load_dataset(config), config)
    assert [m.name for m in models] == ["A", "B"]
    assert _worker_processes() == []
