"""A real headless Chromium (the distribution's package) driven by Selenium, for the page tests.

Installed by the test set-up when missing (apt-get, as root, like CI on a fresh machine);
a browser that cannot start fails the test with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,900")


def ensure_installed() -> None:
    if os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"Chromium is not installed and this user cannot install it; run as root: {INSTALL}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            pytest.fail(f"installing Chromium failed ({' '.join(command)}: {result.stderr.strip()[-500:]}); "
                        f"install it by hand: {INSTALL}")


def start():
    """A headless Chromium session; the caller quits it."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    ensure_installed()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with both paths given, Selenium downloads nothing
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console_errors() reads the console
    try:
        return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except WebDriverException as exc:
        pytest.fail(f"headless Chromium did not start ({exc.msg}); reinstall it: {INSTALL}")


def console_errors(driver) -> list[str]:
    """The console's errors since the last call (a resource that failed to load is one)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


IMAGES = "return [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"


def images(driver) -> list[list]:
    """[src as written, loaded] of every image on the page, once the page has finished loading them."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return [...document.images].every(i => i.complete)"))
    return driver.execute_script(IMAGES)


def screenshot(driver, name: str, folder) -> None:
    """Save the page as ``name`` in ``folder`` and, with SCREENSHOTS=<folder> set (``SCREENSHOTS=docs/images
    make integration`` refreshes the documentation's pictures), there too: a test run never rewrites files
    of the checkout by itself (a changed tracked file would make the clone's next release dirty)."""
    path = Path(folder) / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 0
    if os.environ.get("SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["SCREENSHOTS"]) / name)
