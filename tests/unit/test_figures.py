"""The evaluation figures a release ships: the numbers behind them, SVG bytes that do not depend on the
process or the machine's fonts, the cache, the model card's links and the wheel's file list."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from pipeline.package.own_package import errors, published
from pipeline.steps import evaluation, figures
from pipeline.steps.build import expected_wheel_files, model_card
from tests.helpers import REPO
from tests.registry_wheels import model_metadata

CONTEXT = {"model": "LogReg", "version": "1.1.2+titanic", "target": "y", "units": None}


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows), "noise": rng.normal(size=rows)})


def classifier(labels: list[str], rows: int = 300):
    X = frame(rows)
    y = pd.Series(np.array(labels)[(X["a"] + 0.3 * X["b"] > 0).astype(int) + (X["a"] > 1).astype(int)
                                   if len(labels) == 3 else (X["a"] + 0.3 * X["b"] > 0).astype(int)])
    return LogisticRegression().fit(X, y), X, y


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "entries"


@pytest.fixture(scope="module")
def binary():
    model, X, y = classifier(["no", "yes"], rows=3000)
    return evaluation.evaluation(model, X, y, "classification", seed=0)


def test_a_binary_classification_records_its_positive_class_curves_within_bounds(binary):
    assert binary["classes"] == ["no", "yes"] and list(binary["curves"]) == ["yes"]
    assert np.array(binary["confusion_matrix"]).sum() == binary["rows"] == 3000
    curves = binary["curves"]["yes"]
    assert 2 < len(curves["precision_recall"]["precision"]) <= evaluation.MAX_POINTS  # 3000 rows: thinned
    assert len(curves["roc"]["fpr"]) == len(curves["roc"]["tpr"]) and curves["roc"]["fpr"][0] == 0.0
    assert curves["roc"]["auc"] > 0.9 and len(curves["calibration"]["prob_true"]) <= evaluation.CALIBRATION_BINS
    importance = binary["permutation_importance"]["columns"]
    assert importance["a"]["mean"] > importance["noise"]["mean"] and set(importance) == {"a", "b", "noise"}
    published.check_evaluation(json.loads(json.dumps(binary)), "LogReg/evaluation.json")


def test_a_multiclass_classification_records_every_class_one_vs_rest_and_per_class_metrics():
    model, X, y = classifier(["barbera", "barolo", "grignolino"])
    numbers = evaluation.evaluation(model, X, y, "classification", seed=0)
    assert list(numbers["curves"]) == ["barbera", "barolo", "grignolino"]
    metrics = evaluation.per_class(model, X, y)
    assert set(metrics) == {"barbera", "barolo", "grignolino"}
    assert sum(m["support"] for m in metrics.values()) == len(X) and all(0 <= m["f1"] <= 1 for m in metrics.values())


def test_a_regression_records_at_most_max_predictions_pairs():
    X = frame(2000)
    y = 3 * X["a"] + X["b"]
    numbers = evaluation.evaluation(Ridge().fit(X, y), X, y, "regression", seed=0)
    predictions = numbers["predictions"]
    assert len(predictions["actual"]) == len(predictions["predicted"]) == evaluation.MAX_PREDICTIONS
    assert predictions["of_rows"] == 2000 and "curves" not in numbers
    assert numbers["permutation_importance"]["scoring"] == "r2"


def test_scoring_again_is_read_from_the_cache(cache):
    model, X, y = classifier(["0", "1"])
    first = evaluation.evaluated(model, X, y, "classification", 0, {"scikit-learn": "1"})
    assert len(list((cache / evaluation.CACHE_KIND).iterdir())) == 1
    assert evaluation.evaluated(model, X, y, "classification", 0, {"scikit-learn": "1"}) == first
    evaluation.evaluated(model, X.iloc[:-1], y.iloc[:-1], "classification", 0, {"scikit-learn": "1"})  # other rows
    evaluation.evaluated(model, X, y, "classification", 0, {"scikit-learn": "2"})  # another library version
    assert len(list((cache / evaluation.CACHE_KIND).iterdir())) == 3


RENDER_ALL = """
import json, sys
from pipeline.steps import figures
numbers, context = json.loads(sys.stdin.read())
print(json.dumps({kind: figures.render(kind, numbers, context).decode() for kind in figures.KINDS["classification"]}))
"""


def test_the_svg_bytes_are_the_same_in_a_fresh_process_and_hold_no_date(binary):
    numbers = {**binary, "baseline": {"version": "1.1.1+titanic", "rows": 200, "curves": binary["curves"]}}
    here = {kind: figures.render(kind, numbers, CONTEXT).decode() for kind in figures.KINDS["classification"]}
    fresh = subprocess.run([sys.executable, "-c", RENDER_ALL], input=json.dumps([numbers, CONTEXT]), text=True,
                           capture_output=True, cwd=REPO, check=True)
    assert json.loads(fresh.stdout) == here
    for svg in here.values():
        assert svg.startswith("<?xml") and "<dc:date>" not in svg and 'id="DejaVuSans-' not in svg  # no glyphs
    # The dashed baseline is in the curves' figures only, with its version and rows in the legend.
    assert "1.1.1+titanic, on 200 rows" in here["roc"] and "1.1.1+titanic" not in here["confusion_matrix"]


def test_text_is_set_with_matplotlibs_own_dejavu_and_kept_as_text():
    import matplotlib
    from matplotlib import font_manager

    with matplotlib.rc_context(figures.STYLE):
        found = font_manager.findfont(font_manager.FontProperties(family=matplotlib.rcParams["font.family"]))
    assert found.startswith(matplotlib.get_data_path()), found  # not a system copy, whose metrics may differ
    svg = figures.render("confusion_matrix", {"classes": ["a", "b"], "confusion_matrix": [[1, 0], [0, 1]], "rows": 2},
                         CONTEXT).decode()
    assert "<text" in svg and "font-family" in svg  # svg.fonttype "none": no glyph outlines embedded


def test_labels_from_the_data_are_shown_as_written(binary):
    labels = ["$\\frac{1", "<script>alert(1)</script>"]
    numbers = {**binary, "classes": labels, "curves": {labels[1]: binary["curves"]["yes"]}}
    for kind in figures.KINDS["classification"]:
        svg = figures.render(kind, numbers, CONTEXT).decode()
        assert "<script>" not in svg
    svg = figures.render("confusion_matrix", numbers, CONTEXT).decode()
    assert "$\\frac{1" in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    long = "a_column_name_from_a_warehouse_table"  # shortened to fit the figure's margin
    numbers["permutation_importance"]["columns"][long] = {"mean": 0.1, "std": 0.01}
    svg = figures.render("permutation_importance", numbers, CONTEXT).decode()
    assert long[:figures.LONGEST_COLUMN - 1] + "…" in svg and long not in svg


DRAW_FROM_CACHE = """
import json, sys
from pathlib import Path
from pipeline.steps import figures
numbers, context = json.loads(sys.stdin.read())
svg = figures.draw("roc", numbers, context)
print(json.dumps(["matplotlib" in sys.modules, svg.decode()]))
"""


def test_a_figure_drawn_before_is_read_from_the_cache_without_matplotlib(binary, cache):
    drawn = figures.draw("roc", binary, CONTEXT)
    imported, again = json.loads(subprocess.run([sys.executable, "-c", DRAW_FROM_CACHE],
                                                input=json.dumps([binary, CONTEXT]), text=True, capture_output=True,
                                                cwd=REPO, check=True).stdout)
    assert again.encode() == drawn and not imported
    # The confusion matrix shows no version: a new version with the same numbers draws none again.
    figures.draw("confusion_matrix", binary, CONTEXT)
    before = len(list((cache / figures.CACHE_KIND).iterdir()))
    figures.draw("confusion_matrix", binary, {**CONTEXT, "version": "1.1.3+titanic"})
    assert len(list((cache / figures.CACHE_KIND).iterdir())) == before


DRAW_CURVES = """
import json, sys
from pipeline.steps import figures
numbers, context = json.loads(sys.stdin.read())
svg = [figures.render(kind, numbers, context).decode() for kind in sorted(figures.BASELINE_KINDS)]
print(json.dumps([sorted(name for name in sys.modules if name.split(".")[0] in ("sklearn", "scipy", "pandas")), svg]))
"""


def _drawn_by_scikit_learns_displays(kind: str, numbers: dict, context: dict) -> bytes:
    """The curve figures as RocCurveDisplay, PrecisionRecallDisplay and CalibrationDisplay draw them."""
    import io

    import matplotlib
    from matplotlib.figure import Figure
    from numpy import asarray
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    positive = figures._positive(numbers)
    with matplotlib.rc_context(figures.STYLE):
        figure = Figure()
        axes = figure.subplots()
        figure.subplots_adjust(**figures.MARGINS)
        for position, (index, name, curves, baseline) in enumerate(figures._curves(numbers, context)):
            style, shown = figures._style(index, baseline), curves[kind]
            if kind == "roc":
                RocCurveDisplay(fpr=asarray(shown["fpr"]), tpr=asarray(shown["tpr"]), roc_auc=shown["auc"], name=name,
                                pos_label=positive).plot(ax=axes, curve_kwargs=style, plot_chance_level=position == 0)
            elif kind == "precision_recall":
                PrecisionRecallDisplay(asarray(shown["precision"]), asarray(shown["recall"]), name=name,
                                       average_precision=shown["average_precision"], pos_label=positive).plot(
                    ax=axes, curve_kwargs=style)
            else:
                CalibrationDisplay(asarray(shown["prob_true"]), asarray(shown["prob_pred"]), None,
                                   pos_label=positive).plot(ax=axes, name=name, **style,
                                                            marker="o" if baseline else "s", markersize=3)
        figures._unit_axes(axes)
        axes.legend(loc={"roc": "lower right", "precision_recall": "lower left", "calibration": "upper left"}[kind])
        axes.set_title(f"{context['model']}: {figures.TITLES[kind]}")
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


@pytest.mark.parametrize("labels", [["no", "yes"], ["x", "y", "z"]], ids=["binary", "three classes"])
def test_the_curves_are_drawn_as_scikit_learns_displays_draw_them_without_importing_it(labels):
    """A warm release redraws the curves only (the baseline moved), in a process without scikit-learn:
    matplotlib alone draws them, byte for byte as the displays would, with no scikit-learn import."""
    model, X, y = classifier(labels, rows=400)
    numbers = evaluation.evaluation(model, X, y, "classification", seed=0)
    numbers["baseline"] = {"version": "1.1.1+titanic", "rows": 400, "curves": numbers["curves"]}
    for shown in (numbers, {k: v for k, v in numbers.items() if k != "baseline"}):
        imported, drawn = json.loads(subprocess.run([sys.executable, "-c", DRAW_CURVES],
                                                    input=json.dumps([shown, CONTEXT]), text=True,
                                                    capture_output=True, cwd=REPO, check=True).stdout)
        assert imported == []
        for kind, svg in zip(sorted(figures.BASELINE_KINDS), drawn):
            assert svg.encode() == _drawn_by_scikit_learns_displays(kind, shown, CONTEXT), kind


def test_the_next_release_of_the_same_models_draws_no_curve_figure_again_and_names_its_own_versions(binary, cache):
    """A warm release: the same curves, the last release as the baseline; only the versions' names differ."""
    def numbers_of(baseline: str) -> dict:
        return {**binary, "baseline": {"version": baseline, "rows": 328, "curves": binary["curves"]}}

    first = {kind: figures.draw(kind, numbers_of("1.1.1+titanic"), CONTEXT) for kind in figures.BASELINE_KINDS}
    entries = len(list((cache / figures.CACHE_KIND).iterdir()))
    drawn = figures._drawn["count"]
    for new, old in (("1.1.3+titanic", "1.1.2+titanic"), ("17.40.9+titanic.2024.5", "16.1.10+titanic.2024.5"),
                     ("1.1.10+titanic", "1.1.9+titanic")):
        context = {**CONTEXT, "version": new}
        for kind in figures.BASELINE_KINDS:
            svg = figures.draw(kind, numbers_of(old), context)
            # the bytes drawing these versions gives: the same layout, the versions' own names
            assert svg == figures.render(kind, numbers_of(old), context), (kind, new)
            assert f"{old}, on 328 rows".encode() in svg and new.encode() in svg
            assert b"1.1.2+titanic" not in svg or old == "1.1.2+titanic"
            if new == "1.1.3+titanic":  # the same digits' places as 1.1.2 against 1.1.1: all from the cache
                assert figures._drawn["count"] == drawn
    assert figures._drawn["count"] == drawn + 6  # versions with digits in other places draw again
    assert len(list((cache / figures.CACHE_KIND).iterdir())) == entries + 6
    assert first["roc"] == figures.render("roc", numbers_of("1.1.1+titanic"), CONTEXT)


def test_a_label_that_looks_like_a_stand_in_is_drawn_with_the_versions(binary, cache):
    """A class named like the digits' stand-in of a version is not overwritten with the version."""
    numbers = {**binary, "classes": ["no", "0.0.0+titanic"], "curves": {"0.0.0+titanic": binary["curves"]["yes"]},
               "baseline": {"version": "9.9.9+titanic", "rows": 10, "curves": {"0.0.0+titanic": binary["curves"]["yes"]}}}
    context = {**CONTEXT, "version": "1.2.3+titanic"}
    for kind in figures.BASELINE_KINDS:
        assert figures.draw(kind, numbers, context) == figures.render(kind, numbers, context)
    numbers["baseline"]["version"] = "<b>1.1.1</b>"  # a published file's text: escaped as matplotlib escapes it
    svg = figures.draw("roc", numbers, context)
    assert svg == figures.render("roc", numbers, context) and b"&lt;b&gt;1.1.1&lt;/b&gt;, on 10 rows" in svg


def test_draw_all_writes_each_models_figures_and_lists_them(binary, tmp_path, cache, capsys):
    (tmp_path / "LogReg").mkdir()
    (tmp_path / "LogReg" / evaluation.EVALUATION_FILE).write_text(json.dumps(binary))
    (tmp_path / "Old").mkdir()  # trained before figures: none
    listed = figures.draw_all(tmp_path, "1.1.2+titanic", {"LogReg": {"data": {"target": "y"}}, "Old": {}})
    assert listed == {"LogReg": {kind: f"LogReg/figures/{kind}.svg" for kind in figures.KINDS["classification"]}}
    assert all((tmp_path / path).read_bytes().startswith(b"<?xml") for path in listed["LogReg"].values())
    assert "figures: 5 SVG for 1 models (5 drawn, 0 from the cache) in " in capsys.readouterr().out


def test_the_card_links_each_figure_relative_to_its_place_in_the_package():
    meta = model_metadata("LogReg", 0.8)
    meta["metrics"].update(log_loss=0.4, cv_accuracy_mean=0.79, cv_accuracy_std=0.01)
    meta["training_environment"].update(numpy="2.4.6")
    metadata = {"LogReg": meta}
    drawn = {"LogReg": {"roc": "LogReg/figures/roc.svg", "confusion_matrix": "LogReg/figures/confusion_matrix.svg"}}
    card = model_card("1.1.2+titanic", metadata, drawn, "1.1.1+titanic")
    assert "![LogReg: ROC curve](LogReg/figures/roc.svg)" in card
    assert "dashed curves are `1.1.1+titanic`'s, on the same rows" in card
    assert "dashed" not in model_card("1.1.1+titanic", metadata, drawn)
    assert "## Figures" not in model_card("1.1.1+titanic", metadata)


def test_the_wheel_lists_each_models_evaluation_and_figures():
    drawn = {"SVC": {"roc": "SVC/figures/roc.svg"}}
    files = expected_wheel_files("1.1.1+titanic", ["SVC", "Ridge"], drawn=drawn)
    assert {"mymodel/models/SVC/evaluation.json", "mymodel/models/SVC/figures/roc.svg",
            "mymodel/models/MODEL_CARD.md"} <= set(files)
    assert "mymodel/models/Ridge/evaluation.json" not in files


@pytest.mark.parametrize("change, problem", [
    (lambda n: n["curves"]["yes"]["roc"]["fpr"].pop(), "fpr and tpr have different lengths"),
    (lambda n: n["curves"]["yes"]["roc"].update(fpr=["0"] * len(n["curves"]["yes"]["roc"]["tpr"])), "not a number"),
    (lambda n: n.update(baseline={"version": "1.1.1", "curves": {}}), "baseline.rows is missing"),
    (lambda n: n.update(confusion_matrix=[[1, -2]]), "a whole number"),
])
def test_a_malformed_evaluation_file_is_refused_naming_the_field(binary, change, problem):
    numbers = json.loads(json.dumps(binary))
    change(numbers)
    with pytest.raises(errors.MalformedBuild, match=problem):
        published.check_evaluation(numbers, "LogReg/evaluation.json")


def test_make_verify_takes_the_baseline_a_published_wheel_recorded_or_calls_the_wheel_unreadable(binary, tmp_path,
                                                                                                 monkeypatch):
    from pipeline.errors import UnreadableRelease
    from pipeline.steps.build import recorded_baselines

    wheel = tmp_path / "w.whl"
    baseline = {"version": "1.1.1+titanic", "rows": 300, "curves": binary["curves"]}
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mymodel/models/LogReg/evaluation.json", json.dumps({**binary, "baseline": baseline}))
        archive.writestr("mymodel/models/First/evaluation.json", json.dumps(binary))
    with zipfile.ZipFile(wheel) as archive:
        assert recorded_baselines(archive, {"LogReg": {}, "First": {}, "Old": {}}, "1.1.2+titanic") == {
            "LogReg": baseline, "First": None}
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mymodel/models/LogReg/evaluation.json", json.dumps({**binary, "baseline": {"rows": -1}}))
    with zipfile.ZipFile(wheel) as archive, pytest.raises(UnreadableRelease, match="LogReg/evaluation.json: baseline"):
        recorded_baselines(archive, {"LogReg": {}}, "1.1.2+titanic")
    monkeypatch.setattr(evaluation, "PUBLISHED_LIMIT", 1000)
    with zipfile.ZipFile(wheel) as archive, pytest.raises(UnreadableRelease, match="larger than the 1,000 bytes"):
        recorded_baselines(archive, {"LogReg": {}}, "1.1.2+titanic")
