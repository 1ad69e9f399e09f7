"""A version's figures on the registry pages, the compare page and the chart's metric choice, from the
index's real WSGI app over a folder of wheels (no server process)."""

from __future__ import annotations

import re
import zipfile
from wsgiref.util import setup_testing_defaults

import pytest

from index.registry import figures as registry_figures
from index.server import make_app
from index.yanks import YANKS_FILE, YankStore
from tests.registry_wheels import release_files

SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
SCRIPTED = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            b"<script>document.title='owned'</script></svg>")
CARD = ("# mymodel\n\n![LogReg: ROC curve](LogReg/figures/roc.svg)\n![elsewhere](http://127.0.0.2/x.png)\n"
        "![another version's](../1.1.0%2Btitanic/LogReg/figures/roc.svg)\n")
BASELINE = {"figures_baseline": {"version": "1.1.0+titanic", "rows": 25, "models": ["LogReg"]}}


class Index:
    def __init__(self, tmp) -> None:
        self.packages, self.state = tmp / "packages", tmp / "state"
        self.packages.mkdir()
        (tmp / "htpasswd").write_text("")
        self.app = make_app(self.packages, tmp / "htpasswd", state_dir=self.state)

    def get(self, path: str, query: str = "") -> tuple[int, dict[str, str], bytes]:
        environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": query}
        setup_testing_defaults(environ)
        answer = []
        body = b"".join(self.app(environ, lambda line, headers, exc=None: answer.append((line, headers))))
        line, headers = answer[0]
        return int(line.split()[0]), dict(headers), body


@pytest.fixture()
def index(tmp_path):
    index = Index(tmp_path)
    classes = {"0": {"precision": 0.8, "recall": 0.9, "f1": 0.85, "support": 15},
               "1": {"precision": 0.7, "recall": 0.5, "f1": 0.58, "support": 10}}
    release_files(index.packages, "1.1.0+titanic", {"LogReg": 0.78}, figures={"LogReg": {"roc": SVG}},
                  per_class=classes)
    better = {**classes, "1": {"precision": 0.75, "recall": 0.6, "f1": 0.67, "support": 10}}
    release_files(index.packages, "1.1.1+titanic", {"LogReg": 0.80, "SVC": 0.79}, card=CARD, notes=BASELINE,
                  figures={"LogReg": {"roc": SVG, "confusion_matrix": SVG}, "SVC": {"roc": SCRIPTED}},
                  per_class=better)
    return index


def test_a_version_page_shows_each_listed_figure_as_an_image_served_beside_it(index):
    status, headers, body = index.get("/registry/mymodel/1.1.1+titanic/")
    page = body.decode()
    assert status == 200 and "img-src 'self' data:" in headers["Content-Security-Policy"]
    shown = re.findall(r'<figure data-model="(\w+)" data-kind="(\w+)"><img class="figure" src="([^"]+)"', page)
    # confusion matrix first: the order a build draws them in
    assert shown == [("LogReg", "confusion_matrix", "LogReg/figures/confusion_matrix.svg"),
                     ("LogReg", "roc", "LogReg/figures/roc.svg"), ("SVC", "roc", "SVC/figures/roc.svg")]
    assert "Dashed curves: 1.1.0+titanic, the version this one was gated against, on the 25 held-out rows" in page
    assert "<svg" not in page.split('id="figures"', 1)[1].split("</div>", 1)[0]  # never inline
    status, headers, body = index.get("/registry/mymodel/1.1.1+titanic/LogReg/figures/roc.svg")
    assert status == 200 and body == SVG
    assert headers["Content-Type"] == "image/svg+xml" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def test_only_the_figures_a_wheel_lists_are_served(index, tmp_path):
    for path in ("/registry/mymodel/1.1.1+titanic/LogReg/figures/calibration.svg",  # not drawn
                 "/registry/mymodel/1.1.1+titanic/LogReg/figures/roc.png",
                 "/registry/mymodel/1.1.1+titanic/Nobody/figures/roc.svg",
                 "/registry/mymodel/1.1.1+titanic/LogReg/figures/..%2Fmetadata.json",
                 "/registry/mymodel/9.9.9+titanic/LogReg/figures/roc.svg",
                 "/registry/nothing/1.1.1+titanic/LogReg/figures/roc.svg"):
        assert index.get(path)[0] == 404, path
    # A listed figure larger than the index reads is not served.
    release_files(index.packages, "1.1.2+titanic", {"LogReg": 0.8},
                  figures={"LogReg": {"roc": b"<svg>" + b" " * (registry_figures.FIGURE_LIMIT + 1)}})
    assert index.get("/registry/mymodel/1.1.2+titanic/LogReg/figures/roc.svg")[0] == 404


def test_a_manifest_listing_other_paths_shows_no_figure(index):
    wheel, _ = release_files(index.packages, "1.2.0+titanic", {"LogReg": 0.8}, figures={"LogReg": {"roc": SVG}})
    with zipfile.ZipFile(wheel) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["mymodel/models/manifest.json"] = (b'{"version": "1.2.0+titanic", "files": {}, "figures": {"LogReg": '
                                               b'{"roc": "../../METADATA"}, "../x": {"roc": "../x/figures/roc.svg"}}}')
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    page = index.get("/registry/mymodel/1.2.0+titanic/")[2].decode()
    assert 'id="figures"' not in page
    assert index.get("/registry/mymodel/1.2.0+titanic/LogReg/figures/roc.svg")[0] == 404


def test_the_card_shows_its_own_figures_and_no_other_image(index):
    page = index.get("/registry/mymodel/1.1.1+titanic/")[2].decode()
    card = page.split('id="card">', 1)[1]
    assert re.findall(r"<img [^>]*>", card) == ['<img src="LogReg/figures/roc.svg" alt="LogReg: ROC curve" class="figure">']
    assert "[image: elsewhere]" in card and "[image: another version&#x27;s]" in card


def test_the_compare_page_puts_metrics_classes_contract_data_and_figures_side_by_side(index):
    status, headers, body = index.get("/registry/mymodel/compare/1.1.0+titanic/1.1.1+titanic/")
    page = body.decode()
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    row = page.split('data-model="LogReg" data-metric="accuracy">', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["0.7800", "0.8000", "+0.0200"]
    assert 'data-model="SVC" data-metric="accuracy"><td>SVC</td><td>accuracy</td><td class="num">-</td>' in page
    klass = page.split('data-model="LogReg" data-class="1">', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="num">(.*?)</td>', klass) == [
        f'{a} → {b} <span class="muted">({change})</span>' for a, b, change in (
            ("0.7000", "0.7500", "+0.0500"), ("0.5000", "0.6000", "+0.1000"), ("0.5800", "0.6700", "+0.0900"))] + [
        "10 → 10"]
    assert "model &#x27;SVC&#x27; added" in page and "Required bump from 1.1.0+titanic to 1.1.1+titanic: <strong>minor" in page
    assert "<td>data tag</td><td>titanic</td><td>titanic</td>" in page
    pairs = re.findall(r'<div class="pair">(.*?)</div>(?=<div class="pair">|\n|</div>)', page)
    assert len(pairs) == 3  # LogReg's confusion matrix and ROC curve, SVC's ROC curve
    root = "../../../../../registry/mymodel/"
    assert f'src="{root}1.1.1%2Btitanic/LogReg/figures/roc.svg"' in page
    assert f'src="{root}1.1.0%2Btitanic/LogReg/figures/roc.svg"' in page
    assert "1.1.0+titanic has no confusion matrix of LogReg." in page and "1.1.0+titanic has no ROC curve of SVC." in page
    for path in ("/registry/mymodel/compare/1.1.0+titanic/9.9.9/", "/registry/other/compare/1.1.0+titanic/1.1.1+titanic/"):
        assert index.get(path)[0] == 404, path


def test_the_compare_page_reads_per_class_as_the_version_page_does_bounded_and_escaped(tmp_path):
    """Both pages read a model's "per_class" through one reader: at most PER_CLASS_ROWS classes, every label escaped."""
    from index.registry.views import PER_CLASS_ROWS

    index = Index(tmp_path)
    many = {f"<b>{i}</b>": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": i} for i in range(PER_CLASS_ROWS + 50)}
    for version in ("1.1.0+titanic", "1.1.1+titanic"):
        release_files(index.packages, version, {"LogReg": 0.8}, per_class=many)
    page = index.get("/registry/mymodel/compare/1.1.0+titanic/1.1.1+titanic/")[2].decode()
    table = page.split('id="compare-classes"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr data-model") == PER_CLASS_ROWS and "<b>" not in page
    assert '<td>&lt;b&gt;7&lt;/b&gt;</td>' in table and "&lt;b&gt;149&lt;/b&gt;" not in table


def test_the_version_page_links_to_comparing_with_the_previous_version(index):
    page = index.get("/registry/mymodel/1.1.1+titanic/")[2].decode()
    assert '<a id="compare" href="../../../registry/mymodel/compare/1.1.0%2Btitanic/1.1.1%2Btitanic/">' in page
    assert 'id="compare"' not in index.get("/registry/mymodel/1.1.0+titanic/")[2].decode()  # the first version


def test_the_chart_plots_any_recorded_metric_and_marks_yanked_versions(index):
    YankStore(index.state / YANKS_FILE).set("mymodel", "1.1.0+titanic", "bad data")
    page = index.get("/")[2].decode()
    choices = re.findall(r'data-metric="(\w+)">', page.split('id="chart-metrics"', 1)[1].split("</nav>", 1)[0])
    assert choices == ["accuracy", "roc_auc", "f1"]
    assert re.findall(r'<figure style="margin:0" data-metric="(\w+)">', page) == ["accuracy"]
    chosen = index.get("/", "metric=roc_auc")[2].decode()
    assert re.findall(r'<figure style="margin:0" data-metric="(\w+)">', chosen) == ["roc_auc"]
    assert "<title>LogReg 1.1.0+titanic (yanked): 0.8300</title>" in chosen  # 0.78 + 0.05
    assert "<title>LogReg 1.1.1+titanic: 0.8500</title>" in chosen and 'class="yanked"' in chosen
    package = index.get("/registry/mymodel/", "metric=f1")[2].decode()
    assert re.findall(r'<figure style="margin:0" data-metric="(\w+)">', package) == ["f1"]
    # A metric no version recorded charts the gated one (and keeps no page of its own).
    assert re.findall(r'data-metric="(\w+)">', index.get("/", "metric=nothing")[2].decode().split("</nav>", 1)[1])[:1] \
        == ["accuracy"]
