"""The registry page in a real headless Chromium: what a person sees, from a real index."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import REPO, index_env, pipeline
from tests.integration.browser import screenshot
from tests.integration.test_index import credentials
from tests.registry_wheels import release_files

pytestmark = pytest.mark.integration


def yank(env, version: str, reason: str | None) -> None:
    form = {"name": "mymodel", "version": version, **({"reason": reason} if reason is not None else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/+{'yank' if reason is not None else 'unyank'}",
                                     data=urllib.parse.urlencode(form).encode(), method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(":".join(credentials(env)).encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def test_released_versions_their_metrics_status_and_version_pages_in_chromium(chromium, released, tmp_path):
    from selenium.webdriver.common.by import By

    url = f"http://127.0.0.1:{released.env['INDEX_PORT']}/"
    older, newer = released.versions
    yank(released.env, older, "wrong data for the browser test")
    try:
        chromium.get(url)
        rows = chromium.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
        assert [row.get_attribute("data-version") for row in rows] == [newer, older]
        text = chromium.find_element(By.TAG_NAME, "body").text
        for version in (newer, older):
            assert f"pip install --index-url {url}simple/ mymodel=={version}" in text
        assert "yanked" in rows[1].text and "wrong data for the browser test" in rows[1].text
        assert "available" in rows[0].text and "yanked" not in rows[0].text
        assert rows[0].find_element(By.CSS_SELECTOR, "td.num + td.num").text.count("/") == 1  # accuracy / ROC AUC
        assert "LogisticRegression" in text and "accuracy / ROC AUC" in text
        assert len(chromium.find_elements(By.CSS_SELECTOR, "svg.chart circle")) >= 2
        screenshot(chromium, "registry-page.png", tmp_path)  # the docs' picture of the page (SCREENSHOTS=docs/images)

        rows[0].find_element(By.LINK_TEXT, newer).click()
        card = chromium.find_element(By.ID, "card")
        assert card.find_element(By.TAG_NAME, "h1").text == f"mymodel {newer}"
        packages = Path(released.env["INDEX_DIR"])
        files = chromium.find_element(By.ID, "files").text
        lock = chromium.find_element(By.ID, "lock").text
        for name in (f"mymodel-{newer}-py3-none-any.whl", f"mymodel-{newer}.tar.gz"):
            digest = hashlib.sha256((packages / name).read_bytes()).hexdigest()
            assert f"{name}" in files and digest in files and f"--hash=sha256:{digest}" in lock
        assert lock.startswith(f"mymodel=={newer}")
        assert older in chromium.find_element(By.XPATH, "//h2[starts-with(., 'Diff against')]").text
        assert "pclass" in chromium.find_element(By.ID, "schema").text
        assert "scikit-learn" in chromium.find_element(By.ID, "environment").text
        screenshot(chromium, "version-page.png", tmp_path)
    finally:
        yank(released.env, older, None)


def test_a_card_with_html_shows_as_text_and_the_page_fits_a_phone(chromium, tmp_path):
    from selenium.webdriver.common.by import By

    env = index_env(tmp_path)
    hostile = '<script>document.title="owned"</script><b id="injected">bold</b>'
    release_files(Path(env["INDEX_DIR"]), "1.1.1+test", {"LogReg": 0.8}, card=f"# Card\n\n{hostile}\n",
                  bump={"part": "patch", "kind": "logic", "reasons": [hostile]})
    pipeline(REPO, env, "index")
    try:
        url = f"http://127.0.0.1:{env['INDEX_PORT']}/"
        chromium.get(url)
        assert chromium.find_elements(By.TAG_NAME, "script") == [] and chromium.title != "owned"
        assert hostile in chromium.find_element(By.ID, "versions").text
        chromium.get(url + "registry/mymodel/1.1.1%2Btest/")
        assert chromium.find_elements(By.TAG_NAME, "script") == [] and chromium.find_elements(By.ID, "injected") == []
        assert hostile in chromium.find_element(By.ID, "card").text
        chromium.set_window_size(390, 844)
        try:
            chromium.get(url)
            # A phone scrolls the table, not the page.
            assert chromium.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
            chromium.save_screenshot(str(tmp_path / "phone.png"))
        finally:
            chromium.set_window_size(1280, 900)
    finally:
        pipeline(REPO, env, "index-stop", check=False)


def shown_metrics(release) -> dict[str, dict]:
    """Each model's metrics.json entry, as the release wrote it into the clone."""
    return json.loads((release.repo / "src/mymodel/models/metrics.json").read_text())


def test_a_regression_and_a_three_class_release_show_their_own_metrics_in_chromium(chromium, diabetes_release,
                                                                                     wine_release, tmp_path):
    from selenium.webdriver.common.by import By

    for release, row_metrics, page_metrics, gated in (
            (diabetes_release, ("r2", "rmse"), ("R²", "RMSE", "MAE", "CV R²", "CV R² σ"), ("rmse", "RMSE")),
            (wine_release, ("accuracy", "roc_auc"), ("accuracy", "ROC AUC", "F1", "log loss", "CV accuracy",
                                                     "CV accuracy σ"), ("accuracy", "accuracy"))):
        metrics = shown_metrics(release)
        url = f"http://127.0.0.1:{release.env['INDEX_PORT']}/"
        chromium.get(url)
        (row,) = chromium.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
        assert row.get_attribute("data-version") == release.version
        cells = [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td.num")][1:]  # after the wheel size
        assert cells == [" / ".join(f"{metrics[model][key]:.4f}" for key in row_metrics) for model in sorted(metrics)]
        (figure,) = chromium.find_elements(By.CSS_SELECTOR, "figure[data-metric]")
        assert figure.get_attribute("data-metric") == gated[0]
        assert chromium.find_element(By.XPATH, "//h2[starts-with(., 'Held-out')]").text.startswith(
            f"Held-out {gated[1]} across versions")
        tooltips = [t.get_attribute("textContent") for t in figure.find_elements(By.CSS_SELECTOR, "circle title")]
        assert sorted(tooltips) == sorted(f"{model} {release.version}: {metrics[model][gated[0]]:.4f}"
                                          for model in metrics)
        chromium.save_screenshot(str(tmp_path / f"{release.version}.png"))

        row.find_element(By.LINK_TEXT, release.version).click()
        table = chromium.find_element(By.ID, "metrics")
        headings = [th.text for th in table.find_elements(By.TAG_NAME, "th")]
        assert headings == ["model", "estimator", *page_metrics]
        for line in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
            model, _, *values = [td.text for td in line.find_elements(By.TAG_NAME, "td")]
            assert values[0] == f"{metrics[model][row_metrics[0]]:.4f}" and all(value != "-" for value in values)
        # Every model of these datasets converts: mymodel-onnx ships it, and the page says how to install it.
        assert "mymodel-onnx==" + release.version in chromium.find_element(By.ID, "onnx-install").find_element(
            By.XPATH, "following-sibling::p").text
        assert chromium.find_element(By.ID, "gate").text.startswith(f"The release gate compared {gated[1]}")
        chromium.save_screenshot(str(tmp_path / f"{release.version}-page.png"))
