"""One index, many model packages: two teams' packages on one real index, ``/`` lists both
(also in Chromium), each keeps its page, and this repository's commands see only its own."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, index_env, make, pipeline
from tests.integration.test_index import get
from tests.registry_wheels import renamed_wheel, small_sdist

pytestmark = pytest.mark.integration

OTHER, OTHER_PROJECT, OTHER_VERSION = "titanic_survival", "titanic-survival", "2.0.0+survival"


@pytest.fixture(scope="module")
def two_packages(released, tmp_path_factory):
    """The released mymodel versions and another team's package (a real wheel renamed) on a fresh index."""
    env = index_env(tmp_path_factory.mktemp("two-packages"))
    packages, source = Path(env["INDEX_DIR"]), Path(released.env["INDEX_DIR"])
    packages.mkdir(parents=True)
    for version in released.versions:
        for name in (f"mymodel-{version}-py3-none-any.whl", f"mymodel-{version}.tar.gz"):
            shutil.copy2(source / name, packages / name)
    newer = released.versions[1]
    renamed_wheel(source / f"mymodel-{newer}-py3-none-any.whl", packages, OTHER, OTHER_VERSION)
    small_sdist(packages, OTHER, OTHER_VERSION)
    pipeline(REPO, env, "index")
    yield env
    pipeline(REPO, env, "index-stop", check=False)


def url_of(env) -> str:
    return f"http://127.0.0.1:{env['INDEX_PORT']}/"


def row(page: str, project: str) -> str:
    return page.split(f'<tr data-package="{project}">', 1)[1].split("</tr>", 1)[0]


def test_root_lists_both_packages_and_each_keeps_its_page(two_packages, released):
    url = url_of(two_packages)
    status, body = get(url)
    page = body.decode()
    assert status == 200
    assert [part.split('"', 1)[0] for part in page.split('<tr data-package="')[1:]] == ["mymodel", OTHER_PROJECT]
    newer = released.versions[1]
    assert f"pip install --index-url {url}simple/ mymodel=={newer}" in row(page, "mymodel")
    assert f"pip install --index-url {url}simple/ {OTHER_PROJECT}=={OTHER_VERSION}" in row(page, OTHER_PROJECT)
    for project in ("mymodel", OTHER_PROJECT):
        assert ">titanic<" in row(page, "mymodel") and ">survival<" in row(page, OTHER_PROJECT)
        assert "accuracy 0." in row(page, project) and "available" in row(page, project)

    status, body = get(f"{url}registry/{OTHER_PROJECT}/")
    assert status == 200 and f'data-version="{OTHER_VERSION}"' in body.decode() and newer not in body.decode()
    status, body = get(f"{url}registry/mymodel/")
    versions = [part.split('"', 1)[0] for part in body.decode().split('data-version="')[1:]]
    assert status == 200 and versions == list(reversed(released.versions))
    status, body = get(f"{url}registry/{OTHER_PROJECT}/{OTHER_VERSION.replace('+', '%2B')}/")
    assert status == 200 and "LogisticRegression" in body.decode() and "pclass" in body.decode()


def test_this_repositorys_commands_see_only_its_own_package(two_packages, released):
    listed = make(released.repo, "versions", two_packages).stdout
    shown = [line.split()[0] for line in listed.splitlines() if line[:1].isdigit()]
    assert shown == list(reversed(released.versions)), listed
    assert OTHER_VERSION not in listed and OTHER not in listed and OTHER_PROJECT not in listed
    channels = make(released.repo, "channels", two_packages).stdout
    assert "no channels yet" in channels and OTHER_PROJECT not in channels


def test_root_shows_both_packages_in_chromium_and_a_click_reaches_a_package_page(chromium, two_packages, tmp_path):
    from selenium.webdriver.common.by import By

    url = url_of(two_packages)
    chromium.get(url)
    rows = chromium.find_elements(By.CSS_SELECTOR, "#packages tbody tr")
    assert [r.get_attribute("data-package") for r in rows] == ["mymodel", OTHER_PROJECT]
    text = chromium.find_element(By.TAG_NAME, "body").text
    assert f"pip install --index-url {url}simple/ {OTHER_PROJECT}=={OTHER_VERSION}" in text
    chromium.save_screenshot(str(tmp_path / "packages.png"))
    rows[1].find_element(By.LINK_TEXT, OTHER_PROJECT).click()
    assert chromium.find_element(By.TAG_NAME, "h1").text == OTHER_PROJECT
    versions = chromium.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
    assert [r.get_attribute("data-version") for r in versions] == [OTHER_VERSION]
    versions[0].find_element(By.LINK_TEXT, OTHER_VERSION).click()
    assert chromium.find_element(By.TAG_NAME, "h1").text.startswith(f"{OTHER_PROJECT} {OTHER_VERSION}")
    chromium.find_element(By.PARTIAL_LINK_TEXT, "all versions of").click()
    assert chromium.current_url == f"{url}registry/{OTHER_PROJECT}/"
