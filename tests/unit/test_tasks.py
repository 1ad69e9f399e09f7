"""[dataset] task: classification (binary or multiclass) and regression, from config to metrics,
contract and model card. Data comes from scikit-learn's bundled datasets, written to tmp_path."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from mymodel.contract import Snapshot, diff, required_bump
from pipeline.steps.build import model_card
from pipeline.config import DATASET_CONFIG, DEFAULT_REGRESSION_MODELS, GateRule, load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.errors import ConfigError, DataError
from pipeline.steps.train import evaluate, split, train

WINE_LABELS = {0: "barolo", 1: "grignolino", 2: "barbera"}


def write_csv(tmp_path, name: str, frame: pd.DataFrame):
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def wine_frame() -> pd.DataFrame:
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map(WINE_LABELS)
    return frame


def diabetes_frame() -> pd.DataFrame:
    return load_diabetes(as_frame=True, scaled=False).frame


def config_for(tmp_path, csv, frame: pd.DataFrame, dataset_extra: str = "", rest: str = ""):
    features = ", ".join(f'"{c}"' for c in frame.columns if c != "target")
    path = tmp_path / "dataset.toml"
    path.write_text(f'[dataset]\nsource = "{csv}"\ntag = "t"\ntarget = "target"\nnumeric_features = [{features}]\n'
                    f"{dataset_extra}\n{rest}", encoding="utf-8")
    return load_dataset_config(path)


def refused(error, call, *args) -> str:
    with pytest.raises(error) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_misspelt_task_lists_the_choices(tmp_path):
    frame = diabetes_frame()
    message = refused(ConfigError, config_for, tmp_path, write_csv(tmp_path, "d", frame), frame, 'task = "regresion"')
    assert "task = 'regresion' is not a task" in message
    assert 'task = "classification", task = "regression"' in message


def test_a_many_valued_numeric_target_without_task_suggests_regression(tmp_path):
    frame = diabetes_frame()
    config = config_for(tmp_path, write_csv(tmp_path, "d", frame), frame)
    message = refused(DataError, load_dataset, config)
    assert f"numeric with {frame['target'].nunique()} distinct values" in message
    assert 'set [dataset] task = "regression"' in message
    # declaring it a classification is the way to keep numeric class codes
    declared = config_for(tmp_path, write_csv(tmp_path, "d", frame), frame, 'task = "classification"\n',
                          "[training]\ncv_folds = 2\ntest_size = 0.5\n")
    with pytest.raises(DataError, match="fewer than the 2 cross-validation folds"):
        load_dataset(declared)


def test_a_non_numeric_regression_target_names_the_row(tmp_path):
    frame = diabetes_frame().astype({"target": object})
    frame.loc[17, "target"] = "high"
    config = config_for(tmp_path, write_csv(tmp_path, "d", frame), frame, 'task = "regression"')
    message = refused(DataError, load_dataset, config)
    assert "the regression target 'target' holds 'high' at row 17, not a number" in message


def test_a_class_with_fewer_rows_than_the_folds_is_named_with_its_count(tmp_path):
    frame = wine_frame()
    rare = frame[frame["target"] == "barbera"].index[:3]
    frame = pd.concat([frame[frame["target"] != "barbera"], frame.loc[rare].assign(target="rare")])
    config = config_for(tmp_path, write_csv(tmp_path, "w", frame), frame)
    message = refused(DataError, load_dataset, config)
    assert "the class 'rare' of the target 'target' has 3 rows, fewer than the 5 cross-validation folds need" in message
    assert "lower [training] cv_folds" in message


def test_regression_defaults_and_estimators_of_the_other_task(tmp_path):
    frame = diabetes_frame()
    csv = write_csv(tmp_path, "d", frame)
    config = config_for(tmp_path, csv, frame, 'task = "regression"\ntarget_units = "points"')
    assert config.models == DEFAULT_REGRESSION_MODELS and config.target_units == "points"
    assert config.gate == GateRule("r2", 0.01)
    message = refused(ConfigError, config_for, tmp_path, csv, frame, 'task = "regression"',
                      '[models.Forest]\nestimator = "RandomForestClassifier"\n')
    assert "models.Forest.estimator = 'RandomForestClassifier' is for classification, but [dataset] task = 'regression'" in message
    assert "Ridge" in message and "LogisticRegression" not in message
    message = refused(ConfigError, config_for, tmp_path, csv, frame, 'task = "regression"',
                      '[models.Ridge]\nestimator = "Ridge"\ncalibrated = true\n')
    assert "models.Ridge.calibrated applies to classifiers only" in message


@pytest.mark.parametrize("release, fragment", [
    ('gate_metric = "rmse"', "gate_metric = 'rmse' needs max_increase"),
    ('gate_metric = "rmse"\nmax_drop = 1.0', "max_drop does not apply to gate_metric = 'rmse' (lower is better); use max_increase"),
    ('gate_metric = "accuracy"', "gate_metric = 'accuracy' is not a held-out metric of regression; use one of r2, rmse, mae"),
    ("max_accuracy_drop = 0.02", "max_accuracy_drop does not apply to gate_metric = 'r2' (higher is better); use max_drop"),
    ('gate_metric = "rmse"\nmax_increase = -1', "max_increase = -1 must be a number of 0 or more"),
], ids=["no-allowance", "wrong-direction", "other-task", "accuracy-setting", "negative"])
def test_gate_settings_are_checked_against_the_metric(tmp_path, release, fragment):
    frame = diabetes_frame()
    message = refused(ConfigError, config_for, tmp_path, write_csv(tmp_path, "d", frame), frame,
                      'task = "regression"', f"[release]\n{release}\n")
    assert fragment in message


def test_gate_rules_per_direction(tmp_path):
    frame = diabetes_frame()
    config = config_for(tmp_path, write_csv(tmp_path, "d", frame), frame, 'task = "regression"',
                        '[release]\ngate_metric = "rmse"\nmax_increase = 2.5\n')
    assert config.gate == GateRule("rmse", 2.5) and config.gate.setting == "max_rmse_increase"
    assert config.gate.worse(2.6) and not config.gate.worse(-10.0)
    titanic = load_dataset_config(DATASET_CONFIG)  # max_accuracy_drop keeps working
    assert titanic.gate == GateRule("accuracy", 0.01) and titanic.gate.setting == "max_accuracy_drop"


def old_evaluate(pipeline, X, y) -> dict[str, float]:
    """The binary metrics exactly as pipeline/steps/train.py computed them before tasks existed."""
    predicted = pipeline.predict(X)
    positive = pipeline.classes_[-1]
    probabilities = pipeline.predict_proba(X)
    return {
        "accuracy": round(float(accuracy_score(y, predicted)), 6),
        "roc_auc": round(float(roc_auc_score(y == positive, probabilities[:, -1])), 6),
        "f1": round(float(f1_score(y, predicted, pos_label=positive)), 6),
        "log_loss": round(float(log_loss(y, probabilities, labels=pipeline.classes_)), 6),
    }


def test_titanic_metrics_and_metadata_are_what_they_were():
    config = load_dataset_config(DATASET_CONFIG)
    dataset = load_dataset(config)
    models = train(dataset, config)
    _, X_test, _, y_test = split(dataset, config)
    for model in models:
        metrics = model.metadata["metrics"]
        assert set(metrics) == {"accuracy", "roc_auc", "f1", "log_loss", "cv_accuracy_mean", "cv_accuracy_std"}
        assert {k: metrics[k] for k in ("accuracy", "roc_auc", "f1", "log_loss")} == old_evaluate(model.pipeline, X_test, y_test)
        assert model.metadata["classes"] == ["0", "1"] and model.metadata["task"] == "classification"
        assert "target_units" not in model.metadata
        assert model.metadata["data"]["split"] == {"test_size": 0.25, "seed": 0, "train_rows": 981, "test_rows": 328}


def test_multiclass_metrics_average_over_the_classes(tmp_path):
    frame = wine_frame()
    config = config_for(tmp_path, write_csv(tmp_path, "w", frame), frame, "", '[models.LR]\nestimator = "LogisticRegression"\n')
    dataset = load_dataset(config)
    (model,) = train(dataset, config)
    _, X_test, _, y_test = split(dataset, config)
    assert y_test.nunique() == 3
    probabilities, predicted = model.pipeline.predict_proba(X_test), model.pipeline.predict(X_test)
    metrics = model.metadata["metrics"]
    assert metrics["f1"] == round(float(f1_score(y_test, predicted, average="macro")), 6)
    assert metrics["roc_auc"] == round(float(roc_auc_score(y_test, probabilities, multi_class="ovr", average="macro")), 6)
    assert set(metrics) == {"accuracy", "roc_auc", "f1", "log_loss", "cv_accuracy_mean", "cv_accuracy_std"}
    assert model.metadata["classes"] == sorted(WINE_LABELS.values())


def test_regression_metrics_and_unstratified_split(tmp_path):
    frame = diabetes_frame()
    config = config_for(tmp_path, write_csv(tmp_path, "d", frame), frame, 'task = "regression"\ntarget_units = "points"',
                        '[models.Ridge]\nestimator = "Ridge"\n')
    dataset = load_dataset(config)
    assert dataset.frame["target"].dtype == np.float64
    (model,) = train(dataset, config)
    _, X_test, _, y_test = split(dataset, config)
    metrics = model.metadata["metrics"]
    assert set(metrics) == {"r2", "mae", "rmse", "cv_r2_mean", "cv_r2_std"}
    errors = model.pipeline.predict(X_test) - y_test
    assert metrics["rmse"] == pytest.approx(float(np.sqrt((errors ** 2).mean())), abs=1e-6)
    assert metrics["mae"] == pytest.approx(float(errors.abs().mean()), abs=1e-6)
    assert evaluate(model.pipeline, X_test, y_test, "regression", ("rmse",)) == {"rmse": metrics["rmse"]}
    meta = model.metadata
    assert meta["task"] == "regression" and meta["target_units"] == "points" and "classes" not in meta
    card = model_card("1.1.1+t", {"Ridge": meta})
    assert "Task: regression: regressors predicting the number `target`, in points" in card
    assert "| model | estimator | R² | RMSE | MAE | CV R² |" in card


def snapshot(**changes) -> Snapshot:
    meta = {"input_schema": {"columns": []}, "classes": ["0", "1"], "data": {"target": "y"}, **changes}
    return Snapshot(None, {"M": {k: v for k, v in meta.items() if v is not None}}, {"M": "same"}, {})


def test_the_task_and_units_are_interface_and_metadata_without_a_task_is_a_classification():
    before = snapshot()  # written before tasks existed
    assert diff(before, snapshot(task="classification")) == []
    changes = diff(before, snapshot(task="regression", classes=None, target_units="USD"))
    texts = [c.text for c in changes if c.group == "interface"]
    assert "task classification -> regression (what prediction holds)" in texts
    assert "target units (none) -> USD" in texts
    assert required_bump(changes) == "minor"
    regression = snapshot(task="regression", classes=None, target_units="USD")
    assert required_bump(diff(regression, copy.deepcopy(snapshot(task="regression", classes=None, target_units="EUR")))) == "minor"
