"""The contract diff and the bump it requires, one rule at a time, on small metadata dicts."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from mymodel.contract import BUMP_KIND, Change, Snapshot, diff, identical, required_bump
from tests.helpers import REPO


def metadata(name: str = "LogisticRegression") -> dict:
    return {
        "name": name,
        "estimator": "sklearn.linear_model._logistic.LogisticRegression",
        "params": {"C": 1.0, "max_iter": 1000},
        "metrics": {"accuracy": 0.8, "roc_auc": 0.85},
        "classes": ["0", "1"],
        "input_schema": {"columns": [
            {"name": "age", "dtype": "float64", "allows_missing": True},
            {"name": "sex", "dtype": "category", "allows_missing": True, "categories": ["female", "male"]},
        ], "unseen_categories": "ignore"},
        "data": {"tag": "titanic", "source": "openml-titanic", "sha256": "a" * 64, "rows": 1309, "target": "survived",
                 "split": {"test_size": 0.25, "seed": 0, "train_rows": 981, "test_rows": 328}},
        "training_environment": {"python": "3.11.9", "scikit-learn": "1.9.1"},
        "git": {"commit": "1" * 40, "dirty": False},
    }


def snapshot(models: dict[str, dict] | None = None, hashes: dict[str, str] | None = None, version="1.1.1+titanic"):
    models = {"LogisticRegression": metadata()} if models is None else models
    return Snapshot(version, models, hashes or {name: "f" * 64 for name in models}, {})


def changed(edit, *, hashes=None) -> list[Change]:
    """The diff from the fixture to a copy edited by ``edit(metadata)``."""
    old = snapshot()
    new_meta = copy.deepcopy(old.models["LogisticRegression"])
    edit(new_meta)
    return diff(old, snapshot({"LogisticRegression": new_meta}, hashes, version=None))


def column(meta: dict, name: str) -> dict:
    return next(c for c in meta["input_schema"]["columns"] if c["name"] == name)


def texts(changes: list[Change], group: str) -> list[str]:
    return [c.text for c in changes if c.group == group]


def test_the_same_build_has_no_change_and_is_identical():
    assert diff(snapshot(), snapshot()) == []
    assert required_bump([]) is None
    assert identical(snapshot(), snapshot())


def test_a_git_commit_is_not_a_change():
    changes = changed(lambda m: m["git"].update(commit="2" * 40, dirty=True))
    assert changes == []
    assert identical(snapshot(), snapshot(version="1.1.2+titanic"))


# interface: a caller of the old version could notice -> minor


@pytest.mark.parametrize("edit, text", [
    (lambda m: m["input_schema"]["columns"].append({"name": "cabin", "dtype": "category", "allows_missing": True,
                                                   "categories": ["A1"]}), "input column 'cabin' added"),
    (lambda m: m["input_schema"]["columns"].pop(0), "input column 'age' removed"),
    (lambda m: column(m, "age").update(dtype="category"), "input column 'age' dtype float64 -> category"),
    (lambda m: column(m, "age").update(allows_missing=False), "input column 'age' no longer accepts missing values"),
    (lambda m: m.update(classes=["0", "1", "2"]),
     "LogisticRegression: classes ['0', '1'] -> ['0', '1', '2'] (prediction and probability columns)"),
    (lambda m: m["data"].update(target="alive"), "target survived -> alive"),
    (lambda m: m["input_schema"].update(unseen_categories="error"), "unseen categories ignore -> error"),
])
def test_interface_changes_require_minor(edit, text):
    changes = changed(edit)
    assert text in texts(changes, "interface"), changes
    assert required_bump(changes) == "minor" and BUMP_KIND["minor"] == "interface"


def test_a_rename_is_a_removal_and_an_addition():
    changes = changed(lambda m: column(m, "age").update(name="age_years"))
    assert texts(changes, "interface") == ["input column 'age' removed", "input column 'age_years' added"]


def test_models_added_or_removed_are_interface_changes_and_say_so():
    both = {"LogisticRegression": metadata(), "SVC": metadata("SVC")}
    added = diff(snapshot(), snapshot(both))
    assert texts(added, "interface") == ["model 'SVC' added (callers listing models see it)"]
    removed = diff(snapshot(both), snapshot())
    assert texts(removed, "interface") == ["model 'SVC' removed"]
    assert required_bump(added) == required_bump(removed) == "minor"
    assert not identical(snapshot(both), snapshot())


def test_categories_gone_are_an_interface_change_when_unknown_ones_are_refused():
    def edit(m):
        m["input_schema"]["unseen_categories"] = "error"
        column(m, "sex")["categories"] = ["female"]

    assert "input column 'sex': categories no longer accepted 'male'" in texts(changed(edit), "interface")


# logic: how the answer is computed -> patch


@pytest.mark.parametrize("edit, text", [
    (lambda m: m["params"].update(C=0.5), "LogisticRegression: C 1.0 -> 0.5"),
    (lambda m: m["params"].update(penalty="l1"), "LogisticRegression: penalty (none) -> l1"),
    (lambda m: m.update(estimator="sklearn.svm._classes.SVC"),
     "LogisticRegression: estimator class sklearn.linear_model._logistic.LogisticRegression -> sklearn.svm._classes.SVC"),
    (lambda m: m.update(preprocessing={"numeric": "median"}), "LogisticRegression: preprocessing changed"),
    (lambda m: column(m, "sex")["categories"].append("other"), "input column 'sex': new categories 'other'"),
    (lambda m: column(m, "sex").update(categories=["female"]),
     "input column 'sex': categories no longer seen 'male' (ignored as unknown)"),
])
def test_logic_changes_require_patch(edit, text):
    changes = changed(edit)
    assert texts(changes, "logic") == [text] and texts(changes, "interface") == []
    assert required_bump(changes) == "patch" and BUMP_KIND["patch"] == "logic"


def test_a_column_that_starts_accepting_missing_values_is_logic():
    old = snapshot()
    strict = copy.deepcopy(old.models["LogisticRegression"])
    column(strict, "age")["allows_missing"] = False
    changes = diff(snapshot({"LogisticRegression": strict}), old)
    assert texts(changes, "logic") == ["input column 'age' now accepts missing values"]
    assert required_bump(changes) == "patch"


def test_hyperparameters_are_named_with_their_model():
    old = snapshot({"RandomForestClassifier": {**metadata("RandomForestClassifier"), "params": {"n_estimators": 100}}})
    new = snapshot({"RandomForestClassifier": {**metadata("RandomForestClassifier"), "params": {"n_estimators": 300}}})
    assert texts(diff(old, new), "logic") == ["RandomForestClassifier: n_estimators 100 -> 300"]


def test_model_bytes_alone_are_a_logic_change_and_not_identical():
    changes = changed(lambda m: None, hashes={"LogisticRegression": "e" * 64})
    assert changes == [Change("logic", "model 'LogisticRegression' bytes changed")]
    assert required_bump(changes) == "patch"
    assert not identical(snapshot(), snapshot(hashes={"LogisticRegression": "e" * 64}))


# data and environment -> patch


@pytest.mark.parametrize("edit, text", [
    (lambda m: m["data"].update(sha256="b" * 64), f"data sha256 {'a' * 12}… -> {'b' * 12}…"),
    (lambda m: m["data"].update(source="data/titanic.csv"), "data source openml-titanic -> data/titanic.csv"),
    (lambda m: m["data"].update(rows=1000), "data rows 1309 -> 1000"),
    (lambda m: m["data"].update(tag="titanic.v2"), "data tag titanic -> titanic.v2"),
    (lambda m: m["data"]["split"].update(seed=1), "split seed 0 -> 1"),
    (lambda m: m["data"]["split"].update(test_size=0.3), "split test_size 0.25 -> 0.3"),
])
def test_data_changes_require_patch(edit, text):
    changes = changed(edit)
    assert texts(changes, "data") == [text], changes
    assert required_bump(changes) == "patch"


def test_library_versions_are_environment_changes():
    changes = changed(lambda m: m["training_environment"].update({"scikit-learn": "1.9.2", "numpy": "2.4.6"}))
    assert texts(changes, "environment") == ["numpy (none) -> 2.4.6", "scikit-learn 1.9.1 -> 1.9.2"]
    assert required_bump(changes) == "patch"


# metrics: shown, never a reason to bump


def test_metrics_are_shown_old_to_new_and_require_no_bump():
    changes = changed(lambda m: m["metrics"].update(accuracy=0.8125))
    assert changes == [Change("metrics", "LogisticRegression: accuracy 0.8 -> 0.8125 (+0.0125)")]
    assert required_bump(changes) is None
    assert identical(snapshot(), snapshot({"LogisticRegression": {**metadata(), "metrics": {"accuracy": 0.9}}}))


# grouping and order


def test_a_change_shared_by_every_model_is_named_once_and_others_name_their_model():
    def pair(seed_of_svc: int) -> dict:
        svc = metadata("SVC")
        svc["data"]["split"]["seed"] = seed_of_svc
        return {"LogisticRegression": metadata(), "SVC": svc}

    old = snapshot(pair(0))
    new_models = pair(1)
    for meta in new_models.values():
        meta["input_schema"]["columns"].append({"name": "cabin", "dtype": "category", "allows_missing": True})
    changes = diff(old, snapshot(new_models))
    assert texts(changes, "interface") == ["input column 'cabin' added"]
    assert texts(changes, "data") == ["SVC: split seed 0 -> 1"]


def test_changes_come_grouped_in_a_stable_order():
    def edit(m):
        m["metrics"]["accuracy"] = 0.7
        m["training_environment"]["scikit-learn"] = "1.10.0"
        m["data"]["rows"] = 1000
        m["params"]["C"] = 2.0
        m["input_schema"]["columns"].pop()

    changes = changed(edit)
    assert [c.group for c in changes] == ["interface", "logic", "data", "environment", "metrics"]
    assert changed(edit) == changes
    assert required_bump(changes) == "minor"


def test_the_contract_module_imports_only_the_standard_library():
    code = ("import sys; sys.path.insert(0, 'src'); before = set(sys.modules); import mymodel.contract; "
            "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] not in sys.stdlib_module_names))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['mymodel', 'mymodel.contract', 'mymodel.errors', 'mymodel.store', 'mymodel.version']"


# builds with no model in common, and the data tag of published versions


def regressor(name: str = "Ridge") -> dict:
    """A model of another build: a regression on other data, with other inputs."""
    meta = {**metadata(name), "estimator": "sklearn.linear_model._ridge.Ridge", "task": "regression",
            "target_units": "disease progression", "params": {"alpha": 1.0}, "metrics": {"r2": 0.45}}
    del meta["classes"]
    meta["input_schema"] = {"columns": [{"name": "bmi", "dtype": "float64", "allows_missing": True}],
                            "unseen_categories": "ignore"}
    meta["data"] = {"tag": "diabetes", "source": "data/diabetes.csv", "sha256": "b" * 64, "rows": 442,
                    "target": "progression", "split": {"test_size": 0.25, "seed": 0, "train_rows": 331, "test_rows": 111}}
    return meta


def test_builds_with_no_model_in_common_still_name_the_task_target_and_data_changes():
    titanic = snapshot({"LogisticRegression": metadata(), "SVC": metadata("SVC")}, version="2.0.0+titanic.v2")
    diabetes = snapshot({"Ridge": regressor()}, version="2.1.0+diabetes")
    changes = diff(titanic, diabetes)
    assert texts(changes, "interface") == [
        "input column 'age' removed", "input column 'sex' removed", "input column 'bmi' added",
        "task classification -> regression (what prediction holds)",
        "target units (none) -> disease progression",
        "target survived -> progression",
        "model 'LogisticRegression' removed", "model 'SVC' removed",
        "model 'Ridge' added (callers listing models see it)",
    ]
    assert texts(changes, "data") == [
        "data rows 1309 -> 442", f"data sha256 {'a' * 12}… -> {'b' * 12}…",
        "data source openml-titanic -> data/diabetes.csv", "split test_rows 328 -> 111",
        "split train_rows 981 -> 331", "data tag titanic.v2 -> diabetes",
    ]
    assert required_bump(changes) == "minor"


@pytest.mark.parametrize("edit, group, text", [
    (lambda m: m["data"].update(source="data/titanic.csv"), "data", "data source openml-titanic -> data/titanic.csv"),
    (lambda m: m["data"].update(sha256="b" * 64), "data", f"data sha256 {'a' * 12}… -> {'b' * 12}…"),
    (lambda m: m["data"].update(tag="titanic.v2"), "data", "data tag titanic -> titanic.v2"),
    (lambda m: m["data"].update(target="alive"), "interface", "target survived -> alive"),
    (lambda m: m.update(task="regression"), "interface", "task classification -> regression (what prediction holds)"),
])
def test_each_data_change_is_listed_when_no_model_is_in_both_builds(edit, group, text):
    renamed = metadata("SVC")
    edit(renamed)
    changes = diff(snapshot(), snapshot({"SVC": renamed}, version=None))
    assert [t for t in texts(changes, group) if not t.startswith("model ")] == [text], changes
    assert texts(changes, "interface")[-2:] == ["model 'LogisticRegression' removed",
                                                "model 'SVC' added (callers listing models see it)"]


def test_a_build_without_models_is_compared_model_by_model_only():
    assert texts(diff(snapshot(), snapshot({})), "interface") == ["model 'LogisticRegression' removed"]


def test_the_data_tag_of_published_versions_is_their_label():
    relabelled = diff(snapshot(version="1.2.0+titanic"), snapshot(version="2.0.0+titanic.v2"))
    assert relabelled == [Change("data", "data tag titanic -> titanic.v2")]
    assert required_bump(relabelled) == "patch"
    retagged = copy.deepcopy(metadata())
    retagged["data"]["tag"] = "diabetes"
    told_by_label = diff(snapshot(version="2.0.0+titanic.v2"), snapshot({"LogisticRegression": retagged},
                                                                         version="2.1.0+diabetes"))
    assert told_by_label == [Change("data", "data tag titanic.v2 -> diabetes")]
    assert diff(snapshot(version="1.1.1+titanic"), snapshot(version=None)) == []  # a clone's models have no label


def test_a_task_change_is_an_interface_change():
    changes = changed(lambda m: m.update(task="regression"))
    assert texts(changes, "interface") == ["task classification -> regression (what prediction holds)"]
    assert required_bump(changes) == "minor"


def calibrated_svc(seed: int, estimator: str = "SVC") -> dict:
    """The params a CalibratedClassifierCV(SVC(random_state=seed)) records: its repr and its entries."""
    return {**metadata("SVC"), "params": {"cv": None, "ensemble": False, "estimator": f"{estimator}(random_state={seed})",
                                         "estimator__C": 1.0, "estimator__random_state": seed, "method": "sigmoid"}}


def test_a_wrapped_estimators_seed_is_one_change_said_once():
    changes = diff(snapshot({"SVC": calibrated_svc(0)}), snapshot({"SVC": calibrated_svc(1)}))
    assert texts(changes, "logic") == ["SVC: estimator__random_state 0 -> 1"]


def test_a_wrapped_estimators_class_change_is_still_named():
    changes = diff(snapshot({"SVC": calibrated_svc(0)}), snapshot({"SVC": calibrated_svc(1, "LinearSVC")}))
    assert texts(changes, "logic") == ["SVC: estimator SVC(random_state=0) -> LinearSVC(random_state=1)",
                                       "SVC: estimator__random_state 0 -> 1"]
