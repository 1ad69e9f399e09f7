"""The registry pages show each task's own metrics: a regression's R², RMSE and MAE, a
multiclass classification's accuracy, ROC AUC and F1, and the gated metric in the chart."""

from __future__ import annotations

import dataclasses
import re

from index.registry import views
from index.registry.facts import WheelFacts
from index.registry.releases import PackageFile, Release

REGRESSION = {"r2": 0.4526, "rmse": 53.8534, "mae": 42.7941, "cv_r2_mean": 0.4721, "cv_r2_std": 0.0512}
THREE_CLASSES = {"accuracy": 0.9778, "roc_auc": 0.9987, "f1": 0.9781, "log_loss": 0.0712,
                 "cv_accuracy_mean": 0.9625, "cv_accuracy_std": 0.0301}


def release(version: str, task: str, metrics: dict, models: tuple[str, ...], gate: dict | None = None) -> Release:
    files = [PackageFile(f"mymodel-{version}{suffix}", f"mymodel-{version}{suffix}", "ab" * 32, 2048, 0.0, "/nowhere")
             for suffix in ("-py3-none-any.whl", ".tar.gz")]
    extra = {"target_units": "progression points"} if task == "regression" else {"classes": ["barbera", "barolo", "grignolino"]}
    facts = WheelFacts(manifest={"release": {"gate": gate} if gate else {}},
                       models={name: {"name": name, "estimator": f"sklearn.{name}", "task": task, "metrics": metrics,
                                      **extra} for name in models})
    return Release(version, files[0], files[1], facts, None)


def cells(page: str, version: str) -> list[str]:
    row = page.split(f'data-version="{version}"', 1)[1].split("</tr>", 1)[0]
    return re.findall(r'<td class="num">([^<]*)</td>', row)[1:]  # after the wheel size


def test_a_regression_release_shows_r2_rmse_and_its_gated_metric_in_the_chart():
    diabetes = release("2.1.0+diabetes", "regression", REGRESSION, ("Ridge", "RandomForestRegressor"),
                       gate={"metric": "rmse", "lower_is_better": True, "max_rmse_increase": 1.0})
    titanic = release("2.0.0+titanic.v2", "classification", THREE_CLASSES, ("SVC",))
    page = views.registry_html("mymodel", [diabetes, titanic], "http://127.0.0.1:8080/simple/")

    assert cells(page, "2.1.0+diabetes") == ["0.4526 / 53.8534", "0.4526 / 53.8534", "- / -"]
    assert cells(page, "2.0.0+titanic.v2") == ["- / -", "- / -", "0.9778 / 0.9987"]
    assert "R² / RMSE" in page and "accuracy / ROC AUC" in page
    # One chart per gated metric: RMSE for the regression, accuracy for the classification.
    charts = re.findall(r'<h2>([^<]*)</h2>\n<figure style="margin:0" data-metric="(\w+)">(.*?)</figure>', page)
    assert [(title, metric) for title, metric, _ in charts] == [
        ("Held-out RMSE across versions (lower is better)", "rmse"), ("Held-out accuracy across versions", "accuracy")]
    assert "<title>Ridge 2.1.0+diabetes: 53.8534</title>" in charts[0][2]
    assert "<title>SVC 2.0.0+titanic.v2: 0.9778</title>" in charts[1][2]


def test_a_regression_without_a_recorded_gate_is_charted_by_its_r2():
    page = views.registry_html("mymodel", [release("1.1.1+diabetes", "regression", REGRESSION, ("Ridge",))], "u/")
    assert 'data-metric="r2"' in page and "<title>Ridge 1.1.1+diabetes: 0.4526</title>" in page


def test_a_version_page_has_the_columns_of_its_task():
    diabetes = release("1.1.1+diabetes", "regression", REGRESSION, ("Ridge",),
                       gate={"metric": "rmse", "lower_is_better": True, "max_rmse_increase": 1.0})
    page = views.version_html("mymodel", diabetes, None, None, "u/", root="../../../")
    table = page.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<th>([^<]*)</th>", table) == ["model", "estimator", "R²", "RMSE", "MAE", "CV R²", "CV R² σ"]
    assert re.findall(r'<td class="num">([^<]*)</td>', table) == ["0.4526", "53.8534", "42.7941", "0.4721", "0.0512"]
    assert "The release gate compared RMSE with the previous version's (lower is better)" in page
    assert "<dd>regression (progression points)</dd>" in page

    wine = release("1.1.1+wine", "classification", THREE_CLASSES, ("SVC",))
    page = views.version_html("mymodel", wine, None, None, "u/", root="../../../")
    table = page.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<th>([^<]*)</th>", table)[2:] == ["accuracy", "ROC AUC", "F1", "log loss", "CV accuracy",
                                                          "CV accuracy σ"]
    assert re.findall(r'<td class="num">([^<]*)</td>', table)[0] == "0.9778"
    assert 'id="gate"' not in page  # nothing recorded: the page does not guess
    assert "<dd>classification: barbera, barolo, grignolino</dd>" in page


def test_a_hostile_task_or_gate_shows_as_a_classification_and_breaks_nothing():
    odd = release("1.1.1+odd", "classification", {"accuracy": "<b>0.9</b>"}, ("M",), gate={"metric": ["rmse"]})
    odd.facts.models["M"]["task"] = ["regression"]
    page = views.registry_html("mymodel", [odd], "u/")
    assert cells(page, "1.1.1+odd") == ["- / -"] and "<b>" not in page
    assert 'id="gate"' not in views.version_html("mymodel", odd, None, None, "u/", root="../../../")


def test_a_version_page_says_how_to_install_mymodel_onnx_when_a_model_has_onnx():
    wine = release("1.1.1+wine", "classification", THREE_CLASSES, ("SVC", "Team", "Old"))
    wine.facts.models["SVC"]["onnx"] = {"status": "converted", "sha256": "ab" * 32}
    wine.facts.models["Team"]["onnx"] = {"status": "not converted", "reason": "no converter for <script>x</script>"}
    page = views.version_html("mymodel", wine, None, None, "http://127.0.0.1:8080/simple/", root="../../../")
    assert "ONNX copies of SVC)" in page and "<script>x" not in page
    assert "pip install --index-url http://127.0.0.1:8080/simple/ mymodel-onnx==1.1.1+wine" in page
    without = views.version_html("mymodel", release("1.1.0+wine", "classification", THREE_CLASSES, ("SVC",)),
                                 None, None, "u/", root="")
    assert "mymodel-onnx" not in without


def test_per_class_rows_are_escaped_and_bounded():
    wine = release("1.1.1+wine", "classification", {**THREE_CLASSES, "f1_macro": 0.97, "metrics:<cost>": 3.0},
                   ("SVC",), gate={"metric": "metrics:<cost>", "lower_is_better": True})
    per_class = {f"<b>class {i}</b>": {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "support": i} for i in range(150)}
    wine.facts.models["SVC"]["per_class"] = per_class
    page = views.version_html("mymodel", wine, None, None, "u/", root="../../../")
    table = page.split('id="per-class"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<th>([^<]*)</th>", table) == ["model", "class", "precision", "recall", "F1", "support"]
    assert table.count("<tr data-model") == views.PER_CLASS_ROWS == 100
    assert '<td>&lt;b&gt;class 7&lt;/b&gt;</td><td class="num">0.5000</td><td class="num">0.2500</td>' \
           '<td class="num">0.3333</td><td class="num">7</td>' in table
    assert "SVC: 50 more classes not shown" in page and "<b>" not in page
    metrics = page.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<th>([^<]*)</th>", metrics)[-2:] == ["f1_macro", "metrics:&lt;cost&gt;"]
    assert "The release gate compared metrics:&lt;cost&gt; with the previous version's (lower is better)" in page
    assert 'data-metric="metrics:&lt;cost&gt;"' in views.registry_html("mymodel", [wine], "u/")


def test_a_hostile_per_class_or_team_metric_breaks_nothing():
    odd = release("1.1.1+odd", "classification", {**THREE_CLASSES, "x" * 500: 1.0}, ("M",))
    odd.facts.models["M"]["per_class"] = {"a": "not an object", "b": {"precision": "<i>high</i>"}}
    page = views.version_html("mymodel", odd, None, None, "u/", root="")
    assert "x" * 500 not in page and "<i>" not in page and "&lt;i&gt;high&lt;/i&gt;" in page


def test_a_package_page_shows_the_newest_versions_description_escaped():
    plain = release("1.1.2+titanic", "classification", THREE_CLASSES, ("SVC",))
    described = dataclasses.replace(plain, facts=dataclasses.replace(plain.facts, summary="Titanic <survival> models"))
    page = views.registry_html("titanic-survival", [described], "http://127.0.0.1:8080/simple/")
    assert '<p id="summary">Titanic &lt;survival&gt; models</p>' in page
    assert 'id="summary"' not in views.registry_html("mymodel", [release("1.1.1+titanic", "classification",
                                                                          THREE_CLASSES, ("SVC",))], "u/")
