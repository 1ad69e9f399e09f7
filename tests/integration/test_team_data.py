"""The team's data, training and metrics, released for real (README: Sources, Your own training, Your metrics).

One clone releases from a Parquet file, then a folder of CSV files, then the team's loader reading
SQLite (DATA_PY). Each version is installed with its data package into a fresh venv and predicts,
and a clone without the data rebuilds each byte for byte from its Parquet data package (make verify
at the version's commit). Then a LightGBM model stops early through the team's fit function
(TRAINING_PY) with the team's metrics (METRICS_PY) and a gate on one of them, which refuses a worse
release; the version page shows the per-class metrics in Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import sys
import zipfile
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import (
    VENV, assert_clean_error, commit, consumer_env, copy_repo, fill_index, index_env, index_url, make, pipeline, run,
)
from tests.integration.test_data_package import team_clone

pytestmark = pytest.mark.integration

DATA_PY = '''\
"""The team's loader: the passengers from the SQLite database the booking system exports."""

import sqlite3
from contextlib import closing

import pandas as pd

DATABASE = "data/titanic.sqlite"  # relative to the repository's root, where make runs


def load():
    with closing(sqlite3.connect(DATABASE)) as connection:
        return pd.read_sql_query("SELECT * FROM passengers ORDER BY rowid", connection)
'''
TRAINING_PY = '''\
"""The team's training loop: LightGBM stops early on a validation split carved from the training rows."""

import lightgbm
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight


def fit(pipeline, X, y, seed, validation_size=0.2, stopping_rounds=20):
    X_fit, X_valid, y_fit, y_valid = train_test_split(X, y, test_size=validation_size, random_state=seed, stratify=y)
    preprocess = pipeline[:-1].fit(X_fit, y_fit)  # the pipeline's own preprocessing, fitted on the fit rows
    pipeline.fit(X_fit, y_fit, model__sample_weight=compute_sample_weight("balanced", y_fit),
                 model__eval_set=[(preprocess.transform(X_valid), y_valid)],
                 model__callbacks=[lightgbm.early_stopping(stopping_rounds, verbose=False)])
    return pipeline, {"best_iteration": pipeline[-1].best_iteration_}
'''
METRICS_PY = '''\
"""What a wrong answer costs us: a survivor we missed 5, a false alarm 1."""

import numpy as np


def cost(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(5 * np.sum((y_true == "1") & (y_pred == "0")) + np.sum((y_true == "0") & (y_pred == "1")))
'''
BOOSTED_TOML = '''\
[models.Boosted]
estimator = "lightgbm.LGBMClassifier"
n_estimators = 500
learning_rate = 0.05
verbose = -1
random_state = "seed"
fit = "training:fit"
fit_validation_size = 0.2
fit_stopping_rounds = 20
'''
METRICS_TOML = '''\
[evaluation]
metrics = ["f1_macro", "balanced_accuracy", "metrics:cost"]
lower_is_better = ["metrics:cost"]

[release]
gate_metric = "metrics:cost"
max_increase = 5
'''
TEAM_TOML = BOOSTED_TOML + "\n" + METRICS_TOML
LOGISTIC = '\n[models.LogisticRegression]\nestimator = "LogisticRegression"\nmax_iter = 1000\n'
ROW = {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"}
# In the consumer venv: the model's prediction, and the data package's frame against what training recorded.
CONSUMER = f'''
import json, mymodel, mymodel_data
frame = mymodel_data.frame()
print(json.dumps({{"version": mymodel.__version__, "prediction": str(mymodel.predict("LogisticRegression", {ROW!r})
                  ["prediction"].iloc[0]), "rows": len(frame),
                  "types": [[str(n), str(t)] for n, t in frame.dtypes.items()],
                  "recorded": [[c["name"], c["type"]] for c in mymodel_data.metadata()["columns"]]}}))
'''


def titanic() -> pd.DataFrame:
    from pipeline.steps import sources

    return sources.read_source("openml-titanic")


def configure(repo: Path, source: str, models: str = LOGISTIC, release: str = "max_accuracy_drop = 0.01\n") -> None:
    config = repo / "dataset.toml"
    text = re.sub(r"(?m)^source = .*$", f"source = {json.dumps(source)}", config.read_text().split("\n[release]")[0])
    config.write_text(f"{text}\n[release]\n{release}{models}")
    commit(repo, f"train on {source}")


class Team:
    """The clone, its index, where its data lives (outside the clone) and what each release printed."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.repo, self.env = tmp, copy_repo(tmp / "repo"), index_env(tmp)
        self.data = tmp / "data"
        self.outputs: dict[str, str] = {}
        self.commits: dict[str, str] = {}

    def release(self, version: str, *args: str) -> str:
        out = make(self.repo, "release", self.env, *args).stdout
        assert f"released mymodel {version}" in out, out
        self.outputs[version] = out
        self.commits[version] = run(["git", "rev-parse", "HEAD"], cwd=self.repo).stdout.strip()
        return out


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """Three releases of one clone: a Parquet file, a folder of CSV files, the team's SQLite loader."""
    team = Team(tmp_path_factory.mktemp("team-data"))
    fill_index(Path(team.env["INDEX_DIR"]))
    frame = titanic()
    team.data.mkdir()
    frame.to_parquet(team.data / "titanic.parquet")
    configure(team.repo, str(team.data / "titanic.parquet"))
    team.release("1.1.1+titanic")

    (team.data / "csv").mkdir()
    for number, start in enumerate(range(0, len(frame), 500)):  # the passengers in three files, by name
        frame.iloc[start:start + 500].to_csv(team.data / "csv" / f"part-{number}.csv", index=False)
    configure(team.repo, str(team.data / "csv"))
    team.release("1.1.2+titanic")

    database = team.data / "titanic.sqlite"
    with closing(sqlite3.connect(database)) as connection:
        frame.to_sql("passengers", connection, index=False)
    (team.repo / "src/mymodel/data.py").write_text(DATA_PY.replace('"data/titanic.sqlite"', repr(str(database))))
    configure(team.repo, "data:load")
    team.release("1.1.3+titanic")
    yield team
    pipeline(team.repo, team.env, "index-stop", check=False)


def data_metadata(env: dict[str, str], version: str) -> dict:
    with zipfile.ZipFile(Path(env["INDEX_DIR"]) / f"mymodel_data-{version}-py3-none-any.whl") as wheel:
        assert wheel.getinfo("mymodel_data/data.parquet").file_size > 0
        return json.loads(wheel.read("mymodel_data/metadata.json"))


def model_metadata(env: dict[str, str], version: str, model: str = "LogisticRegression") -> dict:
    with zipfile.ZipFile(Path(env["INDEX_DIR"]) / f"mymodel-{version}-py3-none-any.whl") as wheel:
        return json.loads(wheel.read(f"mymodel/models/{model}/metadata.json"))


def test_each_source_publishes_its_frame_as_parquet_and_the_models_pin_it(team):
    pins = {}
    # what the release publishes of each source: its name (the file's, the folder's), never the path on this machine
    for version, source in (("1.1.1+titanic", "titanic.parquet"), ("1.1.2+titanic", "csv"),
                            ("1.1.3+titanic", "data:load")):
        metadata = model_metadata(team.env, version)
        pinned = metadata["data"]["package"]
        facts = data_metadata(team.env, pinned["version"])
        assert metadata["data"]["source"] == source and str(team.data) not in json.dumps([metadata, facts])
        assert facts["sha256"] == metadata["data"]["sha256"] and facts["format"] == "parquet"
        assert facts["rows"] == 1309 and [c["name"] for c in facts["columns"]][:3] == ["pclass", "survived", "name"]
        pins[version] = pinned["requirement"]
    assert "data: first data package -> publishes mymodel-data==1.0.0+titanic" in team.outputs["1.1.1+titanic"]
    # the CSV files' types are read from text (survived: whole numbers, not text): another frame
    assert "data: column 'survived' retyped str -> int64 against 1.0.0+titanic (minor) -> publishes " \
           "mymodel-data==1.1.0+titanic" in team.outputs["1.1.2+titanic"]
    # SQLite gives back the Parquet file's frame, types included: the same sha256, its data package pinned again
    assert pins["1.1.3+titanic"] == pins["1.1.1+titanic"] == "mymodel-data==1.0.0+titanic"
    assert "data: unchanged, mymodel-data==1.0.0+titanic" in team.outputs["1.1.3+titanic"]
    assert "next version: logic change against 1.1.2+titanic: " in team.outputs["1.1.3+titanic"]
    assert set(model_metadata(team.env, "1.1.3+titanic")["package_code"]) == {"data.py"}  # the loader ships


@pytest.mark.parametrize("version", ["1.1.1+titanic", "1.1.2+titanic", "1.1.3+titanic"])
def test_each_release_installs_in_a_fresh_venv_predicts_and_reads_its_data_back(team, version, tmp_path):
    venv, env, uv = tmp_path / "venv", consumer_env(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink"), VENV / "bin/uv"
    run([uv, "venv", "-q", "--python", sys.executable, venv], env=env)
    pinned = model_metadata(team.env, version)["data"]["package"]["requirement"]
    run([uv, "pip", "install", "-q", "--python", venv / "bin/python", "--index-url", f"{index_url(team.env)}simple/",
         f"mymodel=={version}", pinned], env=env)
    report = json.loads(run([venv / "bin/python", "-I", "-c", CONSUMER], cwd=tmp_path, env=env).stdout)
    assert report["version"] == version and report["prediction"] == "1"  # a first-class woman survives
    assert report["rows"] == 1309 and report["types"] == report["recorded"]  # the dtypes the models were trained from


def test_a_clone_without_the_data_rebuilds_each_version_byte_for_byte_from_its_data_package(team, tmp_path):
    clone = team_clone(team.repo, tmp_path / "clone")
    hidden = team.data.with_name("data.hidden")
    team.data.rename(hidden)  # nowhere on this machine: only the index has the data
    try:
        for version in ("1.1.1+titanic", "1.1.2+titanic", "1.1.3+titanic"):
            run(["git", "clean", "-qf", "--", "releases"], cwd=clone)  # the copies below, which a checkout may track
            run(["git", "checkout", "-q", team.commits[version]], cwd=clone)
            # the release commit comes before its record's commit: the team's records, as a teammate pulls them
            for record in (team.repo / "releases").glob("*.txt"):
                shutil.copy2(record, clone / "releases" / record.name)
            out = make(clone, "verify", team.env, f"VERSION={version}").stdout
            assert "data: mymodel-data==" in out and "sha256 checked against the pin of the wheel" in out, out
            assert "reproducible: the rebuilt wheel is byte-identical to the published one" in out, out
    finally:
        hidden.rename(team.data)


def test_a_loader_that_fails_stops_the_release_in_one_line(team, tmp_path):
    clone = team_clone(team.repo, tmp_path / "clone")
    (clone / "src/mymodel/data.py").write_text("def load():\n    raise ConnectionError('no route to db.internal')\n")
    failed = make(clone, "release", team.env, check=False)
    assert_clean_error(failed, "[dataset] source = 'data:load': load() raised ConnectionError: no route to "
                               "db.internal; fix the loader in src/mymodel/data.py")


@pytest.fixture(scope="module")
def boosted(team):
    """The team's LightGBM model, fitted by its function, judged by its metrics: 1.2.0 (a model replaced: a minor)."""
    repo = team.repo
    (repo / "src/mymodel/training.py").write_text(TRAINING_PY)
    (repo / "src/mymodel/metrics.py").write_text(METRICS_PY)
    text, release = TEAM_TOML.split("\n[release]\n")
    configure(repo, "data:load", "\n" + text, release)
    out = team.release("1.2.0+titanic")
    return out


def test_lightgbm_stops_early_through_the_team_fit_and_records_its_best_iteration(team, boosted):
    metadata = model_metadata(team.env, "1.2.0+titanic", "Boosted")
    best = metadata["fit"]["recorded"]["best_iteration"]
    assert metadata["fit"]["function"] == "training:fit"
    assert metadata["fit"]["params"] == {"stopping_rounds": 20, "validation_size": 0.2}
    assert 0 < best < 500 and metadata["params"]["n_estimators"] == 500  # stopped early
    assert set(metadata["package_code"]) == {"data.py", "metrics.py", "training.py"}
    metrics = metadata["metrics"]
    assert {"f1_macro", "balanced_accuracy", "metrics:cost", "accuracy", "cv_accuracy_mean"} <= set(metrics)
    assert metrics["metrics:cost"] >= 0 and set(metadata["per_class"]) == {"0", "1"}
    with zipfile.ZipFile(Path(team.env["INDEX_DIR"]) / "mymodel-1.2.0+titanic-py3-none-any.whl") as wheel:
        release = json.loads(wheel.read("mymodel/models/manifest.json"))["release"]
        card = wheel.read("mymodel-1.2.0+titanic.dist-info/METADATA").decode()
    assert release["gate"] == {"metric": "metrics:cost", "lower_is_better": True, "max_metrics:cost_increase": 5.0}
    assert "## Per class (held-out rows)" in card and "| Boosted | 1 |" in card
    assert "| balanced\\_accuracy | f1\\_macro | metrics\\:cost |" in card  # escaped Markdown, shown as written

    versions = make(team.repo, "versions", team.env).stdout
    assert "Boosted accuracy balanced_accuracy f1_macro metrics:cost" in versions, versions
    diff = make(team.repo, "diff", team.env, "A=1.1.3+titanic", "B=1.2.0+titanic").stdout
    assert "model 'Boosted' added" in diff
    per_class = [line.split() for line in diff.split("per class (held-out rows):\n", 1)[1].splitlines()]
    recall = metadata["per_class"]["1"]["recall"]
    assert ["Boosted", "1", "recall", "-", f"{recall:.4f}", "(new)"] in per_class, diff
    assert ["LogisticRegression", "0", "support", "203", "-", "(gone)"] in per_class, diff


def test_a_release_that_costs_more_than_the_gate_allows_is_refused(team, boosted):
    repo, packages = team.repo, Path(team.env["INDEX_DIR"])
    before = sorted(p.name for p in packages.iterdir())
    # leaves of at least 5,000 rows: no split at all, one answer for every passenger
    text, release = TEAM_TOML.replace("verbose = -1", "verbose = -1\nmin_child_samples = 5000").split("\n[release]\n")
    configure(repo, "data:load", "\n" + text, release)
    refused = make(repo, "release", team.env, check=False)
    assert_clean_error(refused, "metrics:cost rose by more than 5.0 against 1.2.0+titanic for Boosted",
                       "raise max_increase in dataset.toml, or release anyway with FORCE=1")
    assert "metrics:cost against 1.2.0+titanic:" in refused.stdout
    assert sorted(p.name for p in packages.iterdir()) == before  # nothing published


def test_the_version_page_shows_the_team_metrics_and_the_per_class_table_in_chromium(team, boosted, chromium):
    from selenium.webdriver.common.by import By

    chromium.get(f"{index_url(team.env)}registry/mymodel/1.2.0%2Btitanic/")
    headings = [th.text for th in chromium.find_elements(By.CSS_SELECTOR, "#metrics thead th")]
    assert headings[-3:] == ["balanced_accuracy", "f1_macro", "metrics:cost"], headings
    rows = chromium.find_elements(By.CSS_SELECTOR, "#per-class tbody tr")
    assert [(r.get_attribute("data-model"), r.get_attribute("data-class")) for r in rows] == [("Boosted", "0"),
                                                                                            ("Boosted", "1")]
    per_class = model_metadata(team.env, "1.2.0+titanic", "Boosted")["per_class"]
    cells = [td.text for td in rows[1].find_elements(By.TAG_NAME, "td")]
    assert cells == ["Boosted", "1", f"{per_class['1']['precision']:.4f}", f"{per_class['1']['recall']:.4f}",
                     f"{per_class['1']['f1']:.4f}", str(per_class["1"]["support"])]
    assert "The release gate compared metrics:cost with the previous version's (lower is better)" in \
        chromium.find_element(By.ID, "gate").text
