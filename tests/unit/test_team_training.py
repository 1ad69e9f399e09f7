"""The team's training and judging: a model's fit function (``fit = "training:fit"`` and its ``fit_*``
keys) and the team's metrics (``[evaluation] metrics``, a gate on any of them), with real functions in
a real package standing in for src/mymodel."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from pipeline.config import DATASET_CONFIG, load_dataset_config
from pipeline.errors import ConfigError, TrainingError
from pipeline.steps.data import load_dataset
from pipeline.steps.train import split, train

BASE = DATASET_CONFIG.read_text(encoding="utf-8").split("\n[release]")[0]  # [package], [dataset], [training]
LOGISTIC = '[models.Logistic]\nestimator = "LogisticRegression"\nmax_iter = 1000\n'
TRAINING = """
import json
from pathlib import Path

from sklearn.utils.class_weight import compute_sample_weight

SEEN = Path(__file__).with_name("seen.jsonl")


def fit(estimator, X, y, seed, weighted=False, note="none"):
    weights = compute_sample_weight("balanced", y) if weighted else None
    with SEEN.open("a") as out:
        out.write(json.dumps({"rows": sorted(int(i) for i in X.index), "seed": seed, "note": note}) + "\\n")
    estimator.fit(X, y, model__sample_weight=weights)
    return estimator, {"rows_seen": len(X), "note": note}
"""
METRICS = """
import numpy as np


def cost(y_true, y_pred):
    # a missed survivor costs 5, a false alarm 1
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(5 * ((y_true == "1") & (y_pred == "0")).sum() + ((y_true == "0") & (y_pred == "1")).sum())


def confident(y_true, proba):
    return float(proba.max(axis=1).mean())
"""


@pytest.fixture
def package(team_package):
    """The stand-in package with the team's training and metrics modules: (its module writer, its folder)."""
    team_package.write("training", TRAINING)
    team_package.write("metrics", METRICS)
    return team_package.write, team_package.folder


def config(tmp_path, text: str, release: str = "max_accuracy_drop = 0.01"):
    path = tmp_path / "dataset.toml"
    path.write_text(f"{BASE}\n[release]\n{release}\n\n{text}", encoding="utf-8")
    return load_dataset_config(path)


def refused(tmp_path, text: str, release: str = "max_accuracy_drop = 0.01") -> str:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, text, release)
    assert "\n" not in str(caught.value)
    return str(caught.value)


# the fit function


def test_the_fit_function_gets_the_training_rows_only_the_seed_and_its_keys(tmp_path, package):
    _, folder = package
    chosen = config(tmp_path, LOGISTIC + 'fit = "training:fit"\nfit_weighted = true\nfit_note = "balanced"\n')
    dataset = load_dataset(chosen)
    (model,) = train(dataset, chosen)

    X_train, X_test, _, _ = split(dataset, chosen)
    calls = [json.loads(line) for line in (folder / "seen.jsonl").read_text().splitlines()]
    assert len(calls) == 1 + chosen.cv_folds  # the model and each cross-validation fold (in workers: any order)
    whole = [c for c in calls if len(c["rows"]) == len(X_train)]
    assert len(whole) == 1 and whole[0]["rows"] == sorted(X_train.index)
    assert all(set(c["rows"]) < set(X_train.index) for c in calls if c is not whole[0])
    assert not any(set(c["rows"]) & set(X_test.index) for c in calls)  # the held-out rows never reach it
    assert {(c["seed"], c["note"]) for c in calls} == {(0, "balanced")}
    assert model.metadata["fit"] == {"function": "training:fit", "params": {"note": "balanced", "weighted": True},
                                     "recorded": {"note": "balanced", "rows_seen": len(X_train)}}
    assert "weighted" not in model.metadata["params"] and "fit_weighted" not in model.metadata["params"]
    assert model.pipeline.predict(X_test).shape == (len(X_test),)


@pytest.mark.parametrize("table, message", [
    ('fit = "training"\n', "models.Logistic.fit = 'training' is not \"<module>:<function>\""),
    ('fit = "training:fitt"\n', "has no function fitt; did you mean training:fit?"),
    ('fit = "training:fit"\nfit_seed = 3\n', "models.Logistic.fit_seed: seed is passed to the fit function by the pipeline"),
    ('fit = "training:fit"\nfit_rounds = 3\n', "fit cannot be called as fit(estimator, X, y, seed, rounds)"),
])
def test_a_bad_fit_table_is_refused_before_training(tmp_path, package, table, message):
    assert message in refused(tmp_path, LOGISTIC + table)


def test_without_fit_a_fit_key_is_the_estimators_own(tmp_path, package):
    chosen = config(tmp_path, LOGISTIC + "fit_intercept = false\n")
    assert chosen.models[0].params["fit_intercept"] is False and not chosen.models[0].fit


@pytest.mark.parametrize("body, message", [
    ("    raise RuntimeError('out of memory')", "[models.Logistic] fit = 'training:fit' raised RuntimeError: out of memory"),
    ("    return None", "returned NoneType, not the fitted estimator"),
    ("    return estimator", "returned an estimator that is not fitted"),
    ("    return estimator.fit(X, y), {'curve': [1, 2]}", "recorded 'curve' = [1, 2]: record names with a finite number"),
    ("    return estimator.fit(X, y), {'loss': float('nan')}", "recorded 'loss' = nan"),
])
def test_a_fit_function_that_fails_or_returns_something_else_stops_training(tmp_path, package, body, message):
    write, _ = package
    write("training", f"def fit(estimator, X, y, seed):\n{body}\n")
    chosen = config(tmp_path, LOGISTIC + 'fit = "training:fit"\n')
    with pytest.raises(TrainingError) as caught:
        train(load_dataset(chosen), chosen)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# the team's metrics


def test_declared_metrics_and_per_class_metrics_are_recorded(tmp_path, package):
    chosen = config(tmp_path, LOGISTIC + '\n[evaluation]\nmetrics = ["f1_macro", "balanced_accuracy", "metrics:cost", '
                                         '"metrics:confident", "accuracy"]\nlower_is_better = ["metrics:cost"]\n')
    dataset = load_dataset(chosen)
    (model,) = train(dataset, chosen)
    _, X_test, _, y_test = split(dataset, chosen)
    predicted = model.pipeline.predict(X_test)
    from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

    metrics = model.metadata["metrics"]
    assert metrics["f1_macro"] == round(f1_score(y_test, predicted, average="macro"), 6)
    assert metrics["balanced_accuracy"] == round(balanced_accuracy_score(y_test, predicted), 6)
    missed = int(((y_test == "1") & (predicted == "0")).sum())
    false_alarms = int(((y_test == "0") & (predicted == "1")).sum())
    assert metrics["metrics:cost"] == 5 * missed + false_alarms > 0
    assert metrics["metrics:confident"] == round(model.pipeline.predict_proba(X_test).max(axis=1).mean(), 6)
    precision, recall, f1, support = precision_recall_fscore_support(y_test, predicted, labels=["0", "1"])
    assert model.metadata["per_class"]["1"] == {"precision": round(precision[1], 6), "recall": round(recall[1], 6),
                                                "f1": round(f1[1], 6), "support": int(support[1])}
    assert sum(v["support"] for v in model.metadata["per_class"].values()) == len(y_test)


def test_the_gate_may_compare_a_declared_metric_in_its_direction(tmp_path, package):
    declared = '\n[evaluation]\nmetrics = ["f1_macro", "metrics:cost"]\nlower_is_better = ["metrics:cost"]\n'
    by_f1 = config(tmp_path, LOGISTIC + declared, 'gate_metric = "f1_macro"\nmax_drop = 0.02')
    assert (by_f1.gate.metric, by_f1.gate.lower_is_better, by_f1.gate.allowed) == ("f1_macro", False, 0.02)
    by_cost = config(tmp_path, LOGISTIC + declared, 'gate_metric = "metrics:cost"\nmax_increase = 5')
    assert by_cost.gate.lower_is_better and by_cost.gate.worse(6) and not by_cost.gate.worse(5)
    assert by_cost.gate.recorded() == {"metric": "metrics:cost", "lower_is_better": True, "max_metrics:cost_increase": 5.0}


@pytest.mark.parametrize("text, message", [
    ('metrics = ["f1_macr"]', "'f1_macr' is neither a scikit-learn scorer nor a team function; did you mean f1_macro?"),
    ('metrics = ["neg_log_loss"]\nlower_is_better = ["neg_log_loss"]', "only a team function's direction is declared"),
    ('metrics = ["metrics:cost"]\nlower_is_better = ["metrics:other"]', "lower_is_better names 'metrics:other', which metrics does not list"),
    ('metrics = ["metrics:nothing"]', "has no function nothing"),
    ('metrics = "f1_macro"', "[evaluation] metrics = 'f1_macro' must be a list of names"),
    ('metric = ["f1_macro"]', "[evaluation] has no key 'metric'"),
])
def test_a_bad_evaluation_table_is_refused(tmp_path, package, text, message):
    assert message in refused(tmp_path, LOGISTIC + f"\n[evaluation]\n{text}\n")


def test_a_gate_on_an_undeclared_or_lower_is_better_metric_without_its_limit_is_refused(tmp_path, package):
    assert "gate_metric = 'f1_macro' is not a held-out metric of classification; use one of accuracy, roc_auc, f1, " \
           "log_loss, or add it to [evaluation] metrics" in refused(tmp_path, LOGISTIC, 'gate_metric = "f1_macro"')
    declared = '\n[evaluation]\nmetrics = ["metrics:cost"]\nlower_is_better = ["metrics:cost"]\n'
    assert "gate_metric = 'metrics:cost' needs max_increase" in \
        refused(tmp_path, LOGISTIC + declared, 'gate_metric = "metrics:cost"')


def test_a_scorer_that_cannot_score_the_labels_stops_training_with_the_fix(tmp_path, package):
    chosen = config(tmp_path, LOGISTIC + '\n[evaluation]\nmetrics = ["f1"]\n')  # the task's own f1: fine
    (model,) = train(load_dataset(chosen), chosen)
    assert "f1" in model.metadata["metrics"]
    chosen = config(tmp_path, LOGISTIC + '\n[evaluation]\nmetrics = ["precision"]\n')  # pos_label=1 on "0"/"1" labels
    with pytest.raises(TrainingError, match="'precision' cannot score the model 'Logistic' .*f1_macro rather than f1"):
        train(load_dataset(chosen), chosen)


def test_a_regression_scorer_and_a_probability_metric_of_a_regression(tmp_path, package):
    frame_rows = np.random.default_rng(0).normal(size=(80, 2))
    csv = tmp_path / "numbers.csv"
    import pandas as pd

    pd.DataFrame({"x": frame_rows[:, 0], "y": 3 * frame_rows[:, 0] + frame_rows[:, 1]}).to_csv(csv, index=False)
    text = (f'[dataset]\nsource = "{csv}"\ntag = "n"\ntarget = "y"\ntask = "regression"\nnumeric_features = ["x"]\n'
            '[training]\ncv_folds = 3\n[models.Ridge]\nestimator = "Ridge"\n')
    (tmp_path / "r.toml").write_text(text + '[evaluation]\nmetrics = ["metrics:confident"]\n')
    with pytest.raises(ConfigError, match="takes proba, but a regression gives no probabilities"):
        load_dataset_config(tmp_path / "r.toml")
    (tmp_path / "r.toml").write_text(text + '[evaluation]\nmetrics = ["neg_mean_absolute_error"]\n')
    chosen = load_dataset_config(tmp_path / "r.toml")
    (model,) = train(load_dataset(chosen), chosen)
    assert model.metadata["metrics"]["neg_mean_absolute_error"] == pytest.approx(-model.metadata["metrics"]["mae"])
    assert "per_class" not in model.metadata


def test_split_rows_are_the_ones_train_test_split_holds_out():
    # the fit function's "never sees the held-out rows" rests on split() being the one split training uses
    chosen = load_dataset_config()
    dataset = load_dataset(chosen)
    _, X_test, _, _ = split(dataset, chosen)
    expected = train_test_split(dataset.frame.index, test_size=chosen.test_size, random_state=chosen.seed,
                                stratify=dataset.frame[chosen.target])[1]
    assert sorted(X_test.index) == sorted(expected)


def test_the_cross_validations_start_workers_only_for_long_fits_and_below_a_million_rows(tmp_path, package,
                                                                                           monkeypatch):
    """Before: every training started TRAIN_JOBS loky workers, each importing scikit-learn again (~1.5 s of CPU)
    before folds that take a fraction of that here (a changed LogisticRegression's release waited 3 s on them)."""
    write, folder = package
    write("training", """
        import os
        from pathlib import Path

        def fit(estimator, X, y, seed):
            with Path(__file__).with_name("processes.txt").open("a") as out:
                out.write(f"{os.getpid()}\\n")
            return estimator.fit(X, y)
        """)
    import os

    import pipeline.steps.train

    monkeypatch.setattr(pipeline.steps.train, "TRAIN_JOBS", 2)
    chosen = config(tmp_path, LOGISTIC + 'fit = "training:fit"\n')
    dataset = load_dataset(chosen)

    def processes() -> list[str]:
        found = (folder / "processes.txt").read_text().split()
        (folder / "processes.txt").unlink()
        return found

    here = [str(os.getpid())] * (1 + chosen.cv_folds)
    quick = train(dataset, chosen)  # a fit of a few milliseconds: its folds here, no worker started
    assert processes() == here
    monkeypatch.setattr(pipeline.steps.train, "CV_WORKERS_AFTER_S", 0.0)  # as if the fit took long
    slow = train(dataset, chosen)
    found = processes()
    assert len(found) == 1 + chosen.cv_folds and found.count(str(os.getpid())) == 1  # 981 rows: folds in workers
    assert quick[0].metadata["metrics"] == slow[0].metadata["metrics"]  # the same scores wherever the folds ran
    monkeypatch.setattr(pipeline.steps.train, "SERIAL_TRAINING_ROWS", 900)  # as if 981 rows were a million
    train(dataset, chosen)
    assert processes() == here


def test_training_on_small_data_runs_with_one_blas_thread_and_the_same_models(tmp_path, package, monkeypatch):
    """Before: the BLAS's threads (two here) spun beside fits on Titanic-sized matrices (a LogisticRegression's
    folds took 0.8 s of CPU, 0.2 s on one thread); the model's bytes are the same either way."""
    write, folder = package
    write("training", """
        import json
        from pathlib import Path

        from threadpoolctl import threadpool_info

        def fit(estimator, X, y, seed):
            blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
            with Path(__file__).with_name("threads.txt").open("a") as out:
                out.write(json.dumps(blas) + "\\n")
            return estimator.fit(X, y)
        """)
    import json

    from threadpoolctl import threadpool_info

    import pipeline.steps.train
    from pipeline.cache import pickle_sha256

    default = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    chosen = config(tmp_path, LOGISTIC + 'fit = "training:fit"\n')
    dataset = load_dataset(chosen)

    def trained() -> tuple[str, set[int]]:
        model = train(dataset, chosen)[0]
        threads = {n for line in (folder / "threads.txt").read_text().splitlines() for n in json.loads(line)}
        (folder / "threads.txt").unlink()
        return pickle_sha256(model.pipeline), threads

    small, threads = trained()
    assert threads == {1}  # the final fit and every fold (all in this process: quick fits)
    monkeypatch.setattr(pipeline.steps.train, "SINGLE_BLAS_THREAD_ROWS", 900)  # as if 1309 rows were many
    large, threads = trained()
    assert threads == set(default) and large == small
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == default  # restored
