"""The README's quick start, run as written in a fresh clone (TABLES is its TOML block, COMMANDS its
shell block; tests/unit/test_readme.py holds them equal): the package renamed, pointed at the team's
CSV with one model table, released, installed by its exact pin into a fresh venv, predicted,
released again after a hyperparameter change, and rolled back by pin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import consumer_env, copy_repo, fill_index, index_env, pipeline, run
from tests.integration.test_own_model import Readme, shell_env

pytestmark = pytest.mark.integration

TABLES = '''\
[dataset]
source = "data/passengers.csv"   # your CSV, relative to the repository
tag = "passengers"               # the data tag: every version reads X.Y.Z+passengers
target = "survived"              # the column to predict
numeric_features = ["pclass", "age", "fare"]
categorical_features = ["sex", "embarked"]

[models.Survival]
estimator = "LogisticRegression"
C = 1.0
max_iter = 1000
'''
SIMPLE = "--index-url http://127.0.0.1:8080/simple/"
ROW = "{'pclass': 1, 'sex': 'female', 'age': 29, 'fare': 211.3, 'embarked': 'S'}"
COMMANDS = [
    "make rename NAME=titanic-survival",
    'git add -A && git commit -qm "Rename the package to titanic-survival"',
    "# put your CSV at data/passengers.csv, and the two tables above in dataset.toml",
    'git commit -qam "Our data and our model"',
    "make release          # titanic-survival 1.1.1+passengers: the new name's first version",
    f'python3 -m venv ../app && ../app/bin/pip install {SIMPLE} "titanic-survival==1.1.1+passengers"',
    f"../app/bin/python -c \"import titanic_survival as m; print(m.predict('Survival', {ROW}))\"",
    "sed -i 's/^C = 1.0$/C = 0.5/' dataset.toml && git commit -qam \"C = 0.5\"",
    "make release          # titanic-survival 1.1.2+passengers: a patch, a hyperparameter changed",
    f'../app/bin/pip install {SIMPLE} "titanic-survival==1.1.2+passengers"',
    f'../app/bin/pip install {SIMPLE} "titanic-survival==1.1.1+passengers"   # roll back: pin the older version',
]
COLUMNS = ["pclass", "age", "fare", "sex", "embarked", "survived"]
# Run in the consumer venv with -I, from an empty folder: it sees the installed wheel only.
INSTALLED = ("import json, titanic_survival as m; print(json.dumps({'version': m.__version__, 'models': m.list_models(), "
             "'C': m.metadata('Survival')['params']['C'], 'from': m.__file__}))")


def passengers_csv(path: Path) -> None:
    """A team's CSV: the Titanic passenger list's columns the tables name, as a file of its own."""
    from pipeline.steps.sources import read_source

    frame = read_source("openml-titanic")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[COLUMNS].to_csv(path, index=False)


def with_tables(repo: Path) -> None:
    """dataset.toml with the quick start's [dataset] table and its one model table in place of the file's."""
    config = repo / "dataset.toml"
    text = config.read_text()
    head, rest = text.split("\n[dataset]\n", 1)
    between = rest[rest.index("\n[training]\n"):].split("\n[models.")[0]
    config.write_text(head + "\n" + TABLES + between + "\n")


def installed(python: Path, cwd: Path) -> dict:
    return json.loads(run([python, "-I", "-c", INSTALLED], cwd=cwd, env=consumer_env()).stdout)


def test_the_readme_quick_start_ships_the_teams_own_model(tmp_path):
    repo, index = copy_repo(tmp_path / "repo"), index_env(tmp_path)
    fill_index(Path(index["INDEX_DIR"]))
    readme = Readme(repo, shell_env(index), COMMANDS)
    app, outside = tmp_path / "app/bin/python", tmp_path / "elsewhere"
    outside.mkdir()
    try:
        assert "renamed the package mymodel -> titanic-survival" in readme.next("make rename").stdout
        readme.next("git add")
        readme.next("# put your CSV")
        passengers_csv(repo / "data/passengers.csv")
        with_tables(repo)
        readme.next("git commit")
        assert run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo).stdout == ""  # the CSV stays out

        first = readme.next("make release").stdout
        assert "released titanic-survival 1.1.1+passengers" in first, first
        assert "titanic-survival==1.1.1+passengers" in first and "mymodel" not in first, first
        packages = Path(index["INDEX_DIR"])
        assert (packages / "titanic_survival-1.1.1+passengers-py3-none-any.whl").is_file()
        assert list(packages.glob("titanic_survival_data-1.0.0+passengers-*.whl"))  # the CSV, published and pinned

        readme.next("python3 -m venv")
        pinned = installed(app, outside)
        assert (pinned["version"], pinned["models"], pinned["C"]) == ("1.1.1+passengers", ["Survival"], 1.0)
        assert pinned["from"].startswith(str(tmp_path / "app"))  # the wheel, not the repository
        predicted = readme.next("../app/bin/python -c").stdout
        assert "prediction" in predicted and "probability_1" in predicted, predicted

        readme.next("sed -i")
        second = readme.next("make release").stdout
        assert "released titanic-survival 1.1.2+passengers" in second, second
        assert "logic change against 1.1.1+passengers: Survival: C 1.0 -> 0.5" in second, second  # a patch

        readme.next("../app/bin/pip install")
        assert (installed(app, outside)["version"], installed(app, outside)["C"]) == ("1.1.2+passengers", 0.5)
        readme.next("../app/bin/pip install")
        assert (installed(app, outside)["version"], installed(app, outside)["C"]) == ("1.1.1+passengers", 1.0)
        readme.done()
    finally:
        pipeline(repo, index, "index-stop", check=False)
