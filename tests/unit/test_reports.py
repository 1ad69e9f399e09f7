"""The printed reports: make versions (column headings), make diff (data changes across builds with
no model in common), the gate's and the train step's tables (columns sized to the longest model name)."""

from __future__ import annotations

import copy
import json

from mymodel.contract import Snapshot
from pipeline.steps import gate
from pipeline.views import registry
from pipeline.config import DatasetConfig, GateRule
from pipeline.steps.train import TrainedModel, metrics_table
from tests.unit.test_contract import metadata, regressor, snapshot

LONG = "HistGradientBoostingRegressor"


def row(version: str, models: dict[str, dict], reasons: list[str] | None = None) -> dict:
    built = Snapshot(version, models, {name: "f" * 64 for name in models},
                     {"bump": {"part": "patch", "kind": "logic", "reasons": reasons}} if reasons else {})
    entry = registry.Published(built, f"mymodel-{version}-py3-none-any.whl", "e" * 64, 12_000, "2026-01-02T03:04:05+00:00")
    return registry.version_row(version, entry, None)


def scored(meta: dict, **metrics: float) -> dict:
    return {**copy.deepcopy(meta), "metrics": metrics}


def columns(table: str) -> list[str]:
    """The heading's cells (two spaces or more apart)."""
    return [cell.strip() for cell in table.splitlines()[0].split("  ") if cell.strip()]


# make versions


def test_each_model_column_is_headed_by_the_metric_its_models_have():
    titanic = {"LogisticRegression": scored(metadata(), accuracy=0.8),
               "RandomForestClassifier": scored(metadata("RandomForestClassifier"), accuracy=0.81)}
    diabetes = {"RandomForestRegressor": scored(regressor("RandomForestRegressor"), r2=0.45)}
    rows = [row("2.1.0+diabetes", diabetes), row("2.0.0+titanic.v2", titanic)]
    table = registry.versions_table(rows)
    assert columns(table)[4:7] == ["LogisticRegression accuracy", "RandomForestClassifier accuracy",
                                   "RandomForestRegressor r2"], table
    first, second = table.splitlines()[1:]
    assert "0.4500" in first and "0.8000" in second and "0.8100" in second
    assert [r["score_metrics"] for r in rows] == [{"RandomForestRegressor": "r2"},
                                                 {"LogisticRegression": "accuracy", "RandomForestClassifier": "accuracy"}]


def test_a_model_scored_by_accuracy_in_one_version_and_r2_in_another_names_the_metric_in_each_cell():
    rows = [row("2.1.0+diabetes", {"Forest": scored(regressor("Forest"), r2=0.45)}),
            row("2.0.0+titanic", {"Forest": scored(metadata("Forest"), accuracy=0.8)})]
    table = registry.versions_table(rows)
    assert columns(table)[4] == "Forest accuracy|r2"
    assert "r2 0.4500" in table.splitlines()[1] and "accuracy 0.8000" in table.splitlines()[2]
    assert [r["scores"] for r in rows] == [{"Forest": 0.45}, {"Forest": 0.8}]


def test_the_team_metrics_follow_each_models_score_and_json_has_every_metric_and_class():
    per_class = {"0": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 203}}
    newer = {"SVC": {**scored(metadata("SVC"), accuracy=0.82, f1_macro=0.79, **{"metrics:cost": 160.0}),
                     "per_class": per_class}}
    older = {"SVC": scored(metadata("SVC"), accuracy=0.81)}
    rows = [row("1.1.2+titanic", newer), row("1.1.1+titanic", older)]
    table = registry.versions_table(rows)
    assert columns(table)[4] == "SVC accuracy f1_macro metrics:cost", table
    assert "0.8200 0.7900 160.0000" in table.splitlines()[1] and "0.8100 - -" in table.splitlines()[2]
    assert rows[0]["team_scores"] == {"SVC": {"f1_macro": 0.79, "metrics:cost": 160.0}}
    assert rows[0]["per_class"] == {"SVC": per_class} and rows[1]["per_class"] == {}
    assert rows[0]["metrics"]["SVC"]["metrics:cost"] == 160.0


def test_make_diff_compares_every_class_of_each_classifier():
    before = {**metadata("SVC"), "per_class": {"0": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 203},
                                               "1": {"precision": 0.8, "recall": 0.6, "f1": 0.7, "support": 125}}}
    after = {**metadata("SVC"), "per_class": {"0": {"precision": 0.82, "recall": 0.9, "f1": 0.86, "support": 203},
                                              "2": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 3}}}
    report = registry.diff_between(snapshot({"SVC": before}), snapshot({"SVC": after}, version="1.1.2+titanic"))
    assert report["per_class"]["SVC"]["0"]["precision"] == {"a": 0.8, "b": 0.82}
    assert report["per_class"]["SVC"]["2"]["support"] == {"a": None, "b": 3}
    text = registry.diff_text(report)
    per_class = text.split("per class (held-out rows):\n", 1)[1].splitlines()
    assert per_class[0].split() == ["model", "class", "metric", "1.1.1+titanic", "1.1.2+titanic", "change"]
    assert ["SVC", "0", "precision", "0.8000", "0.8200", "+0.0200"] in [line.split() for line in per_class]
    assert ["SVC", "1", "recall", "0.6000", "-", "(gone)"] in [line.split() for line in per_class]
    assert ["SVC", "2", "support", "-", "3", "(new)"] in [line.split() for line in per_class]
    assert json.loads(json.dumps(report))["per_class"] == report["per_class"]
    fitted = {**after, "fit": {"function": "training:fit", "params": {}, "recorded": {"best_iteration": 87}}}
    report = registry.diff_between(snapshot({"SVC": after}), snapshot({"SVC": fitted}, version="1.1.2+titanic"))
    assert report["fit_recorded"] == {"SVC": {"best_iteration": {"a": None, "b": 87}}}
    assert ["SVC", "fit:", "best_iteration", "-", "87", "(new)"] in [line.split() for line in registry.diff_text(report).splitlines()]
    assert "per class" not in registry.diff_text(registry.diff_between(snapshot(), snapshot(version="1.1.2+titanic")))


def test_the_why_column_joins_the_recorded_reasons():
    table = registry.versions_table([row("1.1.2+titanic", {"SVC": metadata("SVC")}, ["no change; BUMP=patch requested"])])
    assert table.splitlines()[1].endswith("  logic  no change; BUMP=patch requested")


# make diff


def test_a_diff_across_builds_with_no_model_in_common_lists_the_data_task_and_target_text_and_json():
    titanic = snapshot({"LogisticRegression": metadata(), "SVC": metadata("SVC")}, version="2.0.0+titanic.v2")
    diabetes = snapshot({"Ridge": regressor()}, version="2.1.0+diabetes")
    report = registry.diff_between(titanic, diabetes)
    text = registry.diff_text(report)
    data = text.split("\ndata:\n", 1)[1].split("\n\n", 1)[0]
    assert data.splitlines() == ["  data rows 1309 -> 442", f"  data sha256 {'a' * 12}… -> {'b' * 12}…",
                                 "  data source openml-titanic -> data/diabetes.csv", "  split test_rows 328 -> 111",
                                 "  split train_rows 981 -> 331", "  data tag titanic.v2 -> diabetes"]
    assert "  task classification -> regression (what prediction holds)" in text
    assert "  target survived -> progression" in text and "required bump: minor (interface)" in text
    changes = json.loads(json.dumps(report))["changes"]
    assert "data source openml-titanic -> data/diabetes.csv" in changes["data"]
    assert "task classification -> regression (what prediction holds)" in changes["interface"]


def test_a_data_pin_both_versions_share_is_printed_as_unchanged():
    """Two versions trained on the same published data: one line, no arrow (before: A -> A, read as a change)."""
    report = registry.diff_between(snapshot({"SVC": metadata("SVC")}, version="1.1.1+mydata"),
                                   snapshot({"SVC": metadata("SVC")}, version="1.1.2+mydata"))
    url = "http://127.0.0.1:8080/simple/mymodel-data/"
    same = registry.diff_text({**report, "data_package": {"a": "mymodel-data==1.0.0+mydata",
                                                          "b": "mymodel-data==1.0.0+mydata", "url": url}})
    assert f"data package: mymodel-data==1.0.0+mydata, unchanged ({url})" in same.splitlines()
    assert "->" not in next(line for line in same.splitlines() if line.startswith("data package:"))
    changed = registry.diff_text({**report, "data_package": {"a": "mymodel-data==1.0.0+mydata",
                                                             "b": "mymodel-data==1.1.0+mydata", "url": url}})
    assert f"data package: mymodel-data==1.0.0+mydata -> mymodel-data==1.1.0+mydata ({url})" in changed.splitlines()


# the gate's and the train step's tables


def trained(name: str, accuracy: float) -> TrainedModel:
    return TrainedModel(name, None, scored(metadata(name), accuracy=accuracy))


def test_the_gate_table_fits_the_longest_model_name():
    published = snapshot({name: scored(metadata(name), accuracy=0.8) for name in ("SVC", LONG)})
    config = DatasetConfig("openml-titanic", "titanic", "survived", ("age",), ("sex",), gate=GateRule("accuracy", 0.01))
    failed, table = gate.compare(None, published, [trained("SVC", 0.81), trained(LONG, 0.795)], None, config)
    lines = table.splitlines()
    assert failed == [] and [line.split()[0] for line in lines] == ["model", LONG, "SVC"]
    starts = {line.index("0.8000") for line in lines[1:]}
    assert len(starts) == 1 and lines[0].index("published") + len("published") == starts.pop() + len("0.8000")
    assert all(line[len(LONG)] == " " for line in lines)


def test_the_train_table_fits_the_longest_model_name():
    table = metrics_table({"Ridge": {"r2": 0.5, "rmse": 50.0}, LONG: {"r2": 0.45, "rmse": 55.5}})
    lines = table.splitlines()
    assert {len(line) for line in lines} == {len(lines[0])}
    assert all(line[len(LONG)] == " " for line in lines)
