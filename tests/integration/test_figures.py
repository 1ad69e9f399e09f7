"""Evaluation figures from real releases: a binary (Titanic, released twice: the second draws the first's
curves), a 3-class (wine) and a regression (diabetes) wheel each hold its figures, make verify rebuilds
them byte-identical, the installed card shows them, and the version and compare pages load every figure in
Chromium without a console error; a forged wheel's scripted SVG runs nothing.

The wine release's rebuild is test_data_package.py's make verify, on the wheel checked here.
SCREENSHOTS=docs/images keeps the compare page's screenshot for the docs (docs/images/registry-compare.png).
"""

from __future__ import annotations

import json
import os
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import REPO, consumer_env, index_env, make, pipeline, run
from tests.integration.browser import console_errors, images, screenshot
from tests.registry_wheels import release_files

pytestmark = pytest.mark.integration

KINDS = {"classification": ["calibration", "confusion_matrix", "permutation_importance", "precision_recall", "roc"],
         "regression": ["permutation_importance", "predicted_vs_actual", "residuals"]}


def wheel_of(env: dict, version: str) -> Path:
    return Path(env["INDEX_DIR"]) / f"mymodel-{version}-py3-none-any.whl"


def shipped(wheel: Path) -> tuple[dict, dict[str, dict], dict[str, list[str]], str]:
    """(manifest, {model: evaluation.json}, {model: figure kinds}, packaged card) of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("mymodel/models/manifest.json"))
        models = sorted({n.split("/")[2] for n in names if n.endswith("/metadata.json")})
        numbers = {m: json.loads(archive.read(f"mymodel/models/{m}/evaluation.json")) for m in models}
        drawn = {m: sorted(n.rsplit("/", 1)[1].removesuffix(".svg") for n in names
                           if n.startswith(f"mymodel/models/{m}/figures/")) for m in models}
        for name in names:
            if name.endswith(".svg"):
                assert archive.read(name).startswith(b"<?xml"), name
        card = archive.read("mymodel/models/MODEL_CARD.md").decode()
    return manifest, numbers, drawn, card


def test_each_release_ships_its_figures_listed_in_its_manifest_and_card(released, wine_release, diabetes_release):
    for env, version, task, classes in ((released.env, "1.1.2+titanic", "classification", ["1"]),
                                        (wine_release.env, "1.1.1+wine", "classification",
                                         ["barbera", "barolo", "grignolino"]),
                                        (diabetes_release.env, "1.1.1+diabetes", "regression", None)):
        wheel = wheel_of(env, version)
        manifest, numbers, drawn, card = shipped(wheel)
        assert drawn and all(kinds == KINDS[task] for kinds in drawn.values()), (version, drawn)
        assert manifest["figures"] == {m: {k: f"{m}/figures/{k}.svg" for k in kinds} for m, kinds in drawn.items()}
        for model, kinds in drawn.items():
            assert all(f"{model}/figures/{k}.svg" in manifest["files"] for k in kinds)  # hashed like the models
            assert all(f"![{model}: " in card and f"]({model}/figures/{k}.svg)" in card for k in kinds)
            if classes:
                assert list(numbers[model]["curves"]) == classes, version
            else:
                assert numbers[model]["predictions"]["of_rows"] == len(numbers[model]["predictions"]["actual"])
        with zipfile.ZipFile(wheel) as archive:
            size = sum(i.compress_size for i in archive.infolist() if "/figures/" in i.filename)
        assert size < 300_000, (version, size)


def test_the_second_release_draws_the_first_ones_curves_on_the_same_rows(released):
    first, second = released.outputs
    assert "figures: no baseline" not in first and "curves drawn dashed" not in first  # nothing published before
    assert ("figures: 1.1.1+titanic's curves drawn dashed for LogisticRegression, RandomForestClassifier, SVC "
            "(the 328 held-out rows both versions scored)") in second
    manifest, numbers, _, card = shipped(wheel_of(released.env, "1.1.2+titanic"))
    assert manifest["release"]["figures_baseline"] == {
        "version": "1.1.1+titanic", "rows": 328, "models": ["LogisticRegression", "RandomForestClassifier", "SVC"]}
    _, before, _, _ = shipped(wheel_of(released.env, "1.1.1+titanic"))
    for model, recorded in numbers.items():
        # the same models on the same rows: the baseline's curves are the first release's own
        assert recorded["baseline"] == {"version": "1.1.1+titanic", "rows": 328, "curves": before[model]["curves"]}
        assert "baseline" not in before[model]
    assert "dashed curves are `1.1.1+titanic`'s" in card
    with zipfile.ZipFile(wheel_of(released.env, "1.1.2+titanic")) as archive:
        roc = archive.read("mymodel/models/SVC/figures/roc.svg").decode()
    assert "1.1.1+titanic, on 328 rows" in roc and "1.1.2+titanic" in roc


def test_make_verify_rebuilds_the_binary_and_the_regression_wheel_byte_identical(released, diabetes_release,
                                                                                   tmp_path):
    for release, version in ((released, "1.1.2+titanic"), (diabetes_release, "1.1.1+diabetes")):
        # an empty cache: every number scored and every figure drawn again, in another process than the release's
        env = {**release.env, "RELEASE_CACHE": str(tmp_path / version)}
        out = make(release.repo, "verify", env, f"VERSION={version}").stdout
        assert "reproducible: the rebuilt wheel is byte-identical to the published one" in out, out
        drawn = 15 if version.endswith("titanic") else 9
        assert f"figures: {drawn} SVG for 3 models ({drawn} drawn, 0 from the cache)" in out, out
        assert len(list((tmp_path / version / "entries" / "figure").iterdir())) == drawn  # kept where RELEASE_CACHE says


def test_the_installed_model_card_shows_its_figures_from_the_package_files(released, pip_venv, chromium, tmp_path):
    from markdown_it import MarkdownIt

    python = pip_venv(tmp_path / "venv")
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--index-url", released.simple_url,
         "mymodel==1.1.2+titanic"], env=consumer_env())
    locate = "import importlib.util as u; print(u.find_spec('mymodel').submodule_search_locations[0])"
    package = Path(run([python, "-c", locate], env=consumer_env()).stdout.strip())
    card = package / "models" / "MODEL_CARD.md"
    assert str(tmp_path / "venv") in str(card)
    page = tmp_path / "card.html"  # the card as a Markdown viewer shows it, beside nothing but the installed files
    page.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><base href="{card.parent.as_uri()}/">'
                    f"</head><body>{MarkdownIt('commonmark').render(card.read_text())}</body></html>")
    console_errors(chromium)
    chromium.get(page.as_uri())
    shown = images(chromium)
    assert len(shown) == 15 and all(loaded for _, loaded in shown), shown
    assert {src for src, _ in shown} == {f"{m}/figures/{k}.svg" for m in ("LogisticRegression", "RandomForestClassifier",
                                                                          "SVC") for k in KINDS["classification"]}
    assert console_errors(chromium) == []


def test_the_version_and_compare_pages_load_every_figure_without_a_console_error(released, chromium, tmp_path):
    from selenium.webdriver.common.by import By

    url = f"http://127.0.0.1:{released.env['INDEX_PORT']}/"
    console_errors(chromium)
    chromium.get(url + "registry/mymodel/1.1.2%2Btitanic/")
    shown = images(chromium)
    figures = [src for src, _ in shown if src.startswith(("LogisticRegression/", "RandomForestClassifier/", "SVC/"))]
    assert len(figures) == 30 and all(loaded for _, loaded in shown), shown  # the Figures section and the card
    assert "Dashed curves: 1.1.1+titanic" in chromium.find_element(By.ID, "figures").text
    assert console_errors(chromium) == []

    chromium.find_element(By.ID, "compare").click()
    assert chromium.current_url == url + "registry/mymodel/compare/1.1.1%2Btitanic/1.1.2%2Btitanic/"
    shown = images(chromium)
    assert len(shown) == 30 and all(loaded for _, loaded in shown), shown  # 15 figures of each version
    assert sum("/1.1.1%2Btitanic/" in src for src, _ in shown) == sum("/1.1.2%2Btitanic/" in src for src, _ in shown)
    metrics = chromium.find_element(By.ID, "compare-metrics").text
    assert "SVC accuracy 0.8262 0.8262 =" in metrics
    assert chromium.find_elements(By.CSS_SELECTOR, '#compare-classes tr[data-model="SVC"]')
    assert console_errors(chromium) == []
    chromium.set_window_size(1280, 2000)
    try:
        chromium.execute_script("document.getElementById('compare-figures').scrollIntoView()")
        screenshot(chromium, "registry-compare.png", tmp_path)  # the docs' picture (SCREENSHOTS=docs/images)
    finally:
        chromium.set_window_size(1280, 900)


@pytest.fixture()
def two_tags(wine_release, diabetes_release, tmp_path):
    """An index serving the wine and the diabetes release: two versions of different data tags (and tasks)."""
    env = index_env(tmp_path)
    packages = Path(env["INDEX_DIR"])
    packages.mkdir()
    for release in (wine_release, diabetes_release):
        for published in Path(release.env["INDEX_DIR"]).glob(f"mymodel-{release.version}*"):
            os.link(published, packages / published.name)
    pipeline(REPO, env, "index")
    yield env
    pipeline(REPO, env, "index-stop", check=False)


def test_the_compare_page_of_two_data_tags_shows_each_ones_figures_and_data(two_tags, chromium):
    from selenium.webdriver.common.by import By

    url = f"http://127.0.0.1:{two_tags['INDEX_PORT']}/registry/mymodel/compare/1.1.1%2Bdiabetes/1.1.1%2Bwine/"
    console_errors(chromium)
    chromium.get(url)
    shown = images(chromium)
    # diabetes: 3 regressors x 3 figures; wine: 3 classifiers x 5 figures; no model name in common
    assert len(shown) == 9 + 15 and all(loaded for _, loaded in shown), shown
    data = chromium.find_element(By.ID, "compare-data").text
    assert "data tag diabetes wine" in data and "task regression (progression points) classification" in data
    assert "mymodel-data==" in data
    changes = chromium.find_element(By.ID, "compare-changes").text
    assert "data tag diabetes -> wine" in changes and "task regression -> classification" in changes
    assert console_errors(chromium) == []


SCRIPTED = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" '
            b'onload="localStorage.setItem(\'owned\', \'onload\')"><rect width="200" height="100" fill="red"/>'
            b"<script>localStorage.setItem('owned', 'script'); document.documentElement.setAttribute('data-owned', '1');"
            b"fetch('/+yank', {method: 'POST'})</script></svg>")


def test_a_forged_wheels_scripted_svg_runs_nothing_on_the_page_or_on_its_own(chromium, tmp_path):
    env = index_env(tmp_path)
    release_files(Path(env["INDEX_DIR"]), "1.1.1+forged", {"LogReg": 0.8}, figures={"LogReg": {"roc": SCRIPTED}},
                  card="# card\n\n![LogReg: ROC curve](LogReg/figures/roc.svg)\n")
    pipeline(REPO, env, "index")
    try:
        page = f"http://127.0.0.1:{env['INDEX_PORT']}/registry/mymodel/1.1.1%2Bforged/"
        chromium.get(page)
        shown = images(chromium)
        assert shown == [["LogReg/figures/roc.svg", True], ["LogReg/figures/roc.svg", True]]  # shown, as an image
        assert chromium.execute_script("return localStorage.getItem('owned')") is None
        figure = page + "LogReg/figures/roc.svg"
        with urllib.request.urlopen(figure, timeout=30) as response:
            assert response.headers["Content-Type"] == "image/svg+xml"
            assert response.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        chromium.get(figure)  # opened on its own, as a link to it would
        assert chromium.execute_script("return document.documentElement.getAttribute('data-owned')") is None
        chromium.get(page)
        assert chromium.execute_script("return localStorage.getItem('owned')") is None
    finally:
        console_errors(chromium)  # the blocked script's report is this test's, not the next one's
        pipeline(REPO, env, "index-stop", check=False)


def test_make_diff_prints_the_compare_page(released):
    out = make(released.repo, "diff", released.env, "A=1.1.1+titanic", "B=1.1.2+titanic").stdout
    url = (f"http://127.0.0.1:{released.env['INDEX_PORT']}/registry/mymodel/compare/"
           f"{quote('1.1.1+titanic', safe='')}/{quote('1.1.2+titanic', safe='')}/")
    assert f"side by side (metrics, per-class metrics, data, figures): {url}" in out, out
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200 and b"compare-figures" in response.read()
