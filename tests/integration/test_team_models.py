"""A team's own models, released for real: a LightGBM classifier by import path and a factory in
src/mymodel/features.py with a custom transformer, installed by pip into a venv that has only the
wheel and its runtime dependencies (no repository, no training code), then edited and released again."""

import json
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import (
    assert_clean_error,
    commit,
    consumer_env,
    copy_repo,
    fill_index,
    index_env,
    index_url,
    make,
    pipeline,
    run,
)

pytestmark = pytest.mark.integration

FEATURES_PY = '''\
"""The team's feature code: it ships in the package, so the pickled LogFare loads anywhere."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

OFFSET = 1.0


class LogFare(BaseEstimator, TransformerMixin):
    """log(OFFSET + x) of the numeric columns: fares are skewed."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]  # fitted: scikit-learn checks for an attribute ending in _
        return self

    def transform(self, X):
        return np.log(OFFSET + np.clip(np.asarray(X, dtype=float), 0, None))


def make_pipeline(numeric_features, categorical_features, seed, C=1.0):
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("log", LogFare())])
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                            ("onehot", OneHotEncoder(handle_unknown="ignore"))])
    columns = ColumnTransformer([("numeric", numeric, numeric_features),
                                 ("categorical", categorical, categorical_features)])
    return Pipeline([("columns", columns), ("model", LogisticRegression(C=C, max_iter=1000, random_state=seed))])
'''
MODELS = '''
[models.Boosted]
estimator = "lightgbm.LGBMClassifier"
n_estimators = 30
random_state = "seed"

[models.Team]
factory = "features:make_pipeline"
C = 0.5
'''
CONSUMER = '''
import json, sys
import mymodel
row = {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"}
print(json.dumps({"from": mymodel.__file__, "models": mymodel.list_models(),
                  "sys_path": sys.path,
                  "predictions": {n: mymodel.predict(n, row).iloc[0].to_dict() for n in mymodel.list_models()},
                  "classes": {n: type(mymodel.load(n)).__name__ for n in mymodel.list_models()}}))
'''


def with_team_models(repo: Path, features: str = FEATURES_PY) -> None:
    (repo / "src/mymodel/features.py").write_text(features)
    config = repo / "dataset.toml"
    config.write_text(config.read_text().split("\n[models.")[0] + MODELS)
    commit(repo, "a LightGBM model and a team factory")


def test_team_models_release_install_predict_and_a_module_edit_is_a_patch(pip_venv, tmp_path):
    repo, env = copy_repo(tmp_path / "repo"), index_env(tmp_path)
    fill_index(Path(env["INDEX_DIR"]))
    try:
        # A factory whose module is not in the package: refused before anything is trained or published.
        config = repo / "dataset.toml"
        config.write_text(config.read_text().split("\n[models.")[0] + MODELS)
        commit(repo, "a factory without its module")
        refused = make(repo, "release", env, check=False)
        assert_clean_error(refused, "models.Team.factory = 'features:make_pipeline': there is no module "
                                    "src/mymodel/features.py; add it to the package folder")
        assert not list(Path(env["INDEX_DIR"]).glob("mymodel-*")) and not (repo / "dist").exists()

        with_team_models(repo)
        first = make(repo, "release", env).stdout
        assert "released mymodel 1.1.1+titanic" in first, first
        wheel = repo / "dist" / "mymodel-1.1.1+titanic-py3-none-any.whl"
        with zipfile.ZipFile(wheel) as archive:
            assert "mymodel/features.py" in archive.namelist()
            assert archive.read("mymodel/features.py").decode() == FEATURES_PY
            team = json.loads(archive.read("mymodel/models/Team/metadata.json"))
            boosted = json.loads(archive.read("mymodel/models/Boosted/metadata.json"))
            requires = archive.read("mymodel-1.1.1+titanic.dist-info/METADATA").decode()
        assert team["factory"] == "features:make_pipeline" and team["params"] == {"C": 0.5}
        assert set(team["package_code"]) == {"features.py"}
        assert boosted["estimator"] == "lightgbm.sklearn.LGBMClassifier"
        assert boosted["params"]["n_estimators"] == 30 and boosted["training_environment"]["lightgbm"] == "4.7.0"
        assert "Requires-Dist: lightgbm<4.8,>=4.7" in requires

        # A consumer: a fresh venv, pip, the test index serving the runtime dependencies, no repository.
        venv = tmp_path / "consumer"
        run([pip_venv(venv), "-m", "pip", "install", "--quiet", "--index-url", f"{index_url(env)}simple/",
             "mymodel==1.1.1+titanic"], env=consumer_env())
        outside = tmp_path / "elsewhere"
        outside.mkdir()
        report = json.loads(run([venv / "bin/python", "-I", "-c", CONSUMER], cwd=outside, env=consumer_env()).stdout)
        assert report["from"].startswith(str(venv)) and not any(str(repo) in p for p in report["sys_path"])
        assert report["models"] == ["Boosted", "Team"]
        assert report["classes"] == {"Boosted": "Pipeline", "Team": "Pipeline"}
        for name, prediction in report["predictions"].items():
            assert prediction["prediction"] in ("0", "1", 0, 1), (name, prediction)
            assert 0.5 < prediction["probability_1"] <= 1, (name, prediction)  # a first-class woman survives

        # The team edits its module: a logic change, released as a patch; make diff names the module.
        with_team_models(repo, FEATURES_PY.replace("OFFSET = 1.0", "OFFSET = 2.0"))
        second = make(repo, "release", env).stdout
        assert "released mymodel 1.1.2+titanic" in second, second
        assert "package module mymodel/features.py changed" in second, second
        diff = make(repo, "diff", env, "A=1.1.1+titanic", "B=1.1.2+titanic").stdout
        assert "package module mymodel/features.py changed (sha256 " in diff, diff
        assert "patch" in diff, diff

        # A module edited after training: make build refuses to ship code the models were not trained with.
        (repo / "src/mymodel/features.py").write_text(FEATURES_PY.replace("OFFSET = 1.0", "OFFSET = 3.0"))
        stale = make(repo, "build", env, check=False)
        assert_clean_error(stale, "src/mymodel/features.py differs from the one the model 'Boosted' was trained "
                                  "with; run make train")
        assert not list((repo / "dist").glob("mymodel-1.1.3*"))
    finally:
        pipeline(repo, env, "index-stop", check=False)


def test_make_requirements_writes_a_hashed_lock_of_every_group_that_make_venv_installs(tmp_path):
    """uv pip compile of every [dependency-groups] group, hashes included, from the index it is given
    (a test index here, on loopback); the Makefile's venv rule installs the result with pip."""
    repo, env = copy_repo(tmp_path / "repo"), index_env(tmp_path)
    fill_index(Path(env["INDEX_DIR"]))
    pyproject = repo / "pyproject.toml"
    groups = pyproject.read_text().split("[dependency-groups]")
    pyproject.write_text(groups[0] + '[dependency-groups]\npipeline = ["joblib"]\ntrain = ["threadpoolctl"]\n\n'
                         + groups[1][groups[1].index("[tool."):])
    lock = repo / "requirements.lock"  # kept: uv keeps the pins it has (and make's venv rule needs it)
    try:
        pipeline(repo, env, "index")
        simple = f"{index_url(env)}simple/"
        make(repo, "requirements", {**env, **consumer_env(UV_DEFAULT_INDEX=simple)})
        text = lock.read_text()
        assert text.startswith("# This file was autogenerated by uv via the following command:\n#    make requirements\n")
        pins = [line for line in text.splitlines() if "==" in line]
        # both groups and their dependencies (joblib's cloudpickle), nothing else
        assert [p.split("==")[0] for p in pins] == ["cloudpickle", "joblib", "threadpoolctl"], text
        assert "# via mymodel (pyproject.toml:train)" in text
        assert all(p.endswith(" \\") for p in pins) and text.count("--hash=sha256:") >= 2, text
        assert "127.0.0.1" not in text  # the lock names no index
        # The venv rule, with the hashed lock: pip installs in hash-checking mode.
        venv = tmp_path / "venv"
        run(["make", "--no-print-directory", "-C", repo, "venv", f"VENV={venv}", f"PYTHON={sys.executable}"],
            env=consumer_env(PIP_INDEX_URL=simple))
        listed = run([venv / "bin/python", "-m", "pip", "list", "--format=json"], env=consumer_env()).stdout
        assert {"cloudpickle", "joblib", "threadpoolctl"} <= {p["name"] for p in json.loads(listed)}
    finally:
        pipeline(repo, env, "index-stop", check=False)
