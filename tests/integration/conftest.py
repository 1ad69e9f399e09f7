"""Expensive shared state: one repository copy that released twice to a real index, and
a three-class and a regression dataset released once each."""

from __future__ import annotations

import os
import subprocess
import typing as t
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import GIT_IDENTITY, PYTHON, copy_repo, copy_venv, fill_index, index_env, make, pipeline, run


@dataclass
class Released:
    repo: Path
    env: dict[str, str]
    outputs: list[str]
    versions: tuple[str, str] = ("1.1.1+titanic", "1.1.2+titanic")

    @property
    def simple_url(self) -> str:
        return f"http://127.0.0.1:{self.env['INDEX_PORT']}/simple/"


@pytest.fixture(scope="session")
def released(tmp_path_factory) -> Released:
    tmp = tmp_path_factory.mktemp("released")
    repo = copy_repo(tmp / "repo")
    env = index_env(tmp)
    fill_index(Path(env["INDEX_DIR"]))
    # BUMP given: the second release publishes the same models again (else: "up to date").
    outputs = [make(repo, "release", env, "BUMP=patch").stdout for _ in range(2)]
    yield Released(repo, env, outputs)
    pipeline(repo, env, "index-stop", check=False)


@pytest.fixture(scope="session")
def pip_venv(tmp_path_factory) -> t.Callable[[Path], Path]:
    """Makes at a path what ``python -m venv`` makes there (its pip from ensurepip, nothing else)
    and returns its python: a copy of one made once per run (see copy_venv)."""
    template = tmp_path_factory.mktemp("pip-venv") / "venv"
    run([PYTHON, "-m", "venv", template])
    return lambda destination: copy_venv(template, destination)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for every page test (each start takes seconds); a test that resizes it sizes it back."""
    from tests.integration import browser

    driver = browser.start()
    yield driver
    driver.quit()


# Two more datasets, each released once on its own index: scikit-learn's bundled wine data
# (three classes, named) and diabetes data (a regression), written to the session's tmp folder.
WINE_LABELS = {0: "barolo", 1: "grignolino", 2: "barbera"}
# As the worked regression example of docs/own-model.md: its gate compares RMSE.
DIABETES_GATE = '[release]\ngate_metric = "rmse"\nmax_increase = 1.0\n'


def dataset_toml(csv: Path, tag: str, frame, extra: str = "", rest: str = "") -> str:
    features = ", ".join(f'"{c}"' for c in frame.columns if c != "target")
    return (f'[dataset]\nsource = "{csv}"\ntag = "{tag}"\ntarget = "target"\nnumeric_features = [{features}]\n{extra}\n'
            f"[training]\ntest_size = 0.25\nseed = 0\ncv_folds = 5\n\n{rest}")


def configure(repo: Path, text: str) -> None:
    (repo / "dataset.toml").write_text(text, encoding="utf-8")
    run(["git", "commit", "-qam", "dataset.toml for this dataset"], cwd=repo, env={**os.environ, **GIT_IDENTITY})


@dataclass
class DatasetRelease:
    """A clone that released one dataset (``make release DATA_FILE=<csv> DATA=<tag>``) to its own index."""

    repo: Path
    env: dict[str, str]
    tmp: Path
    frame: t.Any  # the dataset as written to csv
    csv: Path
    output: str  # make release's stdout
    version: str
    refused: subprocess.CompletedProcess | None = None  # a run refused before the release, if any


@pytest.fixture(scope="session")
def wine_release(tmp_path_factory) -> DatasetRelease:
    from sklearn.datasets import load_wine

    tmp = tmp_path_factory.mktemp("wine")
    repo, env = copy_repo(tmp / "repo"), index_env(tmp)
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map(WINE_LABELS)
    csv = tmp / "wine.csv"
    frame.to_csv(csv, index=False)
    configure(repo, dataset_toml(csv, "wine", frame))
    fill_index(Path(env["INDEX_DIR"]))
    out = make(repo, "release", env, f"DATA_FILE={csv}", "DATA=wine").stdout
    yield DatasetRelease(repo, env, tmp, frame, csv, out, "1.1.1+wine")
    pipeline(repo, env, "index-stop", check=False)


@pytest.fixture(scope="session")
def diabetes_release(tmp_path_factory) -> DatasetRelease:
    from sklearn.datasets import load_diabetes

    tmp = tmp_path_factory.mktemp("diabetes")
    repo, env = copy_repo(tmp / "repo"), index_env(tmp)
    frame = load_diabetes(as_frame=True, scaled=False).frame
    csv = tmp / "diabetes.csv"
    frame.to_csv(csv, index=False)
    configure(repo, dataset_toml(csv, "diabetes", frame))  # task unset: refused (test_tasks checks how)
    refused = make(repo, "release", env, f"DATA_FILE={csv}", "DATA=diabetes", check=False)
    configure(repo, dataset_toml(csv, "diabetes", frame, 'task = "regression"\ntarget_units = "progression points"',
                                 DIABETES_GATE))
    fill_index(Path(env["INDEX_DIR"]))
    out = make(repo, "release", env, f"DATA_FILE={csv}", "DATA=diabetes").stdout
    yield DatasetRelease(repo, env, tmp, frame, csv, out, "1.1.1+diabetes", refused)
    pipeline(repo, env, "index-stop", check=False)
