"""The worked example of docs/own-model.md ("Your own model"), run as written (COMMANDS is its shell
block, FEATURES_PY and MODELS its files; tests/unit/test_docs.py holds them equal): a package named by the team, a custom
transformer in the team's module and a LightGBM model, released twice, installed by its name with pip
and uv into fresh venvs that have only the wheel and its runtime dependencies, predicted, checked by
``validate``, rolled back by pin; the module's edit is a patch that ``make diff`` names. Then the same
index takes another package's release (mymodel) and ``/`` lists both, in Chromium too."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.helpers import (
    GIT_IDENTITY,
    REPO,
    VENV,
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
from tests.integration.test_index import get
from tests.integration.test_onnx_package import assert_same, held_out, onnx_venv  # noqa: F401 (fixture)

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


def register_onnx_converters():
    """Called by the release before it converts the models to ONNX, never by the installed package (so
    skl2onnx is no requirement of it): LogFare as ONNX operators, and the Team model ships in -onnx too."""
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxClip, OnnxLog

    def shape(operator):  # as many columns out as in
        operator.outputs[0].type = operator.inputs[0].type.__class__(operator.inputs[0].type.shape)

    def convert(scope, operator, container):  # log(OFFSET + clip(x, 0))
        opset = container.target_opset
        clipped = OnnxClip(operator.inputs[0], np.array(0, dtype=np.float32), op_version=opset)
        shifted = OnnxAdd(clipped, np.array([OFFSET], dtype=np.float32), op_version=opset)
        OnnxLog(shifted, op_version=opset, output_names=operator.outputs[:1]).add_to(scope, container)

    update_registered_converter(LogFare, "TitanicSurvivalLogFare", shape, convert)
'''
MODELS = '''\
[models.Boosted]
estimator = "lightgbm.LGBMClassifier"
n_estimators = 30
random_state = "seed"
verbose = -1              # LightGBM takes it through **kwargs; without it each fit prints warnings

[models.Team]
factory = "features:make_pipeline"
C = 0.5
'''
SIMPLE = "--index-url http://127.0.0.1:8080/simple/"
ROW = "{'pclass': 1, 'sex': 'female', 'age': 29, 'sibsp': 0, 'parch': 0, 'fare': 211.3, 'embarked': 'S'}"
COMMANDS = [
    'make rename NAME=titanic-survival DESCRIPTION="Who survived the Titanic, by the data team"',
    'git add -A && git commit -qm "Rename the package to titanic-survival"',
    "# write src/titanic_survival/features.py, and the two tables in place of dataset.toml's [models.*] ones",
    'git add -A && git commit -qm "A LightGBM model and the team\'s transformer"',
    "make release          # titanic-survival 1.1.1+titanic: the new name's first version",
    f'python3 -m venv ../consumer && ../consumer/bin/pip install {SIMPLE} "titanic-survival==1.1.1+titanic"',
    f"../consumer/bin/python -c \"import titanic_survival as m; print(m.__version__, m.predict('Team', {ROW}))\"",
    "../consumer/bin/titanic-survival validate     # the libraries the models need, lightgbm>=4.7,<4.8 among them",
    "sed -i 's/^OFFSET = 1.0$/OFFSET = 2.0/' src/titanic_survival/features.py && git commit -qam 'log(2 + fare)'",
    "make release          # titanic-survival 1.1.2+titanic: a patch, package module titanic_survival/features.py changed",
    "make diff A=1.1.1+titanic B=1.1.2+titanic",
    f'../consumer/bin/pip install {SIMPLE} "titanic-survival==1.1.2+titanic"',
    f'../consumer/bin/pip install {SIMPLE} "titanic-survival==1.1.1+titanic"     # roll back: pin the older version',
    f'uv venv ../consumer-uv && uv pip install --python ../consumer-uv/bin/python {SIMPLE} "titanic-survival==1.1.2+titanic"',
    f'uv pip install --python ../consumer-uv/bin/python {SIMPLE} "titanic-survival==1.1.1+titanic"   # roll back',
]
# Run in the consumer venv with -I, from an empty folder: it sees the installed wheel only.
CONSUMER = '''
import json, sys
import titanic_survival
row = {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"}
log = titanic_survival.load("Team").named_steps["columns"].named_transformers_["numeric"].named_steps["log"]
print(json.dumps({"from": titanic_survival.__file__, "models": titanic_survival.list_models(), "sys_path": sys.path,
                  "predictions": {n: titanic_survival.predict(n, row).iloc[0].to_dict()
                                  for n in titanic_survival.list_models()},
                  "transformer": f"{type(log).__module__}.{type(log).__qualname__}",
                  "boosted": type(titanic_survival.load("Boosted").named_steps["model"]).__module__}))
'''


class Readme:
    """Runs a page's commands in order, in the clone, as a shell would (the index's port substituted)."""

    def __init__(self, repo: Path, env: dict[str, str], commands: list[str] = COMMANDS) -> None:
        self.repo, self.env, self.lines = repo, env, iter(commands)

    def next(self, starts: str, check: bool = True):
        line = next(self.lines)
        assert line.startswith(starts), f"the page's next command is {line!r}, not {starts}..."
        if line.startswith("#"):
            return None
        command = line.replace("127.0.0.1:8080", f"127.0.0.1:{self.env['INDEX_PORT']}")
        return run(["bash", "-o", "pipefail", "-ec", command], cwd=self.repo, env=self.env, check=check)

    def done(self) -> None:
        assert next(self.lines, None) is None, "a command of the page the test did not run"


def shell_env(index: dict[str, str]) -> dict[str, str]:
    """The page's shell: make finds the project venv (VENV), uv and python3 on PATH; pip and uv see
    only the test index; git commits as a test identity."""
    env = consumer_env(UV_PYTHON_DOWNLOADS="never", VENV=str(VENV), PATH=f"{VENV / 'bin'}:{os.environ['PATH']}",
                       **GIT_IDENTITY)
    for key in ("BUMP", "DATA", "DATA_FILE", "FORCE", "VERSION", "INDEX_URL", "INDEX_AUTH", "MAKEFLAGS"):
        env.pop(key, None)
    return {**env, **{k: index[k] for k in ("INDEX_PORT", "INDEX_DIR", "INDEX_STATE", "INDEX_FALLBACK",
                                            "RELEASE_LOCK_TIMEOUT")}}


def with_models(repo: Path) -> None:
    config = repo / "dataset.toml"
    config.write_text(config.read_text().split("\n[models.")[0] + "\n" + MODELS)


def installed_version(python: Path, cwd: Path) -> str:
    return run([python, "-c", "import titanic_survival; print(titanic_survival.__version__)"],
               cwd=cwd, env=consumer_env()).stdout.strip()


TEAM_PREDICTIONS = """import json, sys, {package}
rows = json.load(open(sys.argv[1]))
result = {package}.predict("Team", rows)
print(json.dumps(result.to_dict(orient="records") if hasattr(result, "to_dict") else result))
"""


def check_the_onnx_twin_predicts_as_the_package(python: Path, onnx_python: Path, index: dict[str, str],
                                                tmp_path: Path) -> None:
    """titanic-survival-onnx (onnxruntime and numpy only) predicts the Team model, the team's LogFare
    included, as titanic-survival does, on every held-out row."""
    run([VENV / "bin" / "uv", "pip", "install", "--quiet", "--python", onnx_python, "--index-url",
         f"http://127.0.0.1:{index['INDEX_PORT']}/simple/", "titanic-survival-onnx==1.1.1+titanic"], env=consumer_env())
    rows = tmp_path / "held-out.json"
    rows.write_text(json.dumps(held_out(REPO)))  # this clone's dataset and split (the renamed one kept them)
    predicted = {package: json.loads(run([interpreter, "-c", TEAM_PREDICTIONS.format(package=package), rows],
                                         cwd=tmp_path, env=consumer_env()).stdout)
                 for package, interpreter in (("titanic_survival", python), ("titanic_survival_onnx", onnx_python))}
    assert_same(predicted["titanic_survival_onnx"], predicted["titanic_survival"], "classification")


def test_your_own_model_as_the_readme_shows_it(tmp_path, released, onnx_venv):
    repo, index = copy_repo(tmp_path / "repo"), index_env(tmp_path)
    packages = Path(index["INDEX_DIR"])
    fill_index(packages)
    env = shell_env(index)
    readme = Readme(repo, env)
    consumer, outside = tmp_path / "consumer/bin", tmp_path / "elsewhere"
    outside.mkdir()
    try:
        renamed = readme.next("make rename").stdout
        assert "renamed the package mymodel -> titanic-survival" in renamed and "first version" in renamed
        readme.next("git add")

        # A factory whose module is not in the package: refused before anything is trained or published.
        with_models(repo)
        commit(repo, "a factory without its module")
        refused = make(repo, "release", index, check=False)
        assert_clean_error(refused, "models.Team.factory = 'features:make_pipeline': there is no module "
                                    "src/titanic_survival/features.py; add it to the package folder")
        assert not list(packages.glob("titanic_survival-*")) and not (repo / "dist").exists()

        readme.next("# write")
        (repo / "src/titanic_survival/features.py").write_text(FEATURES_PY)
        readme.next("git add")
        first_release = readme.next("make release")
        first = first_release.stdout
        assert "[LightGBM]" not in first + first_release.stderr  # verbose = -1: LightGBM trains quietly
        assert "released titanic-survival 1.1.1+titanic" in first, first  # a new project: its first version
        assert "titanic-survival==1.1.1+titanic" in first and "mymodel" not in first, first
        assert sorted(p.name for p in packages.glob("titanic_survival-*")) == [
            "titanic_survival-1.1.1+titanic-py3-none-any.whl", "titanic_survival-1.1.1+titanic.tar.gz"]
        # The team's module registers a converter for LogFare (register_onnx_converters): Team ships as ONNX too.
        assert "onnx: Team converted (" in first and \
               "ONNX: titanic-survival-onnx 1.1.1+titanic ships Boosted, Team\n" in first, first
        with zipfile.ZipFile(packages / "titanic_survival_onnx-1.1.1+titanic-py3-none-any.whl") as twin:
            shipped = twin.namelist()
            manifest = json.loads(twin.read("titanic_survival_onnx/models/manifest.json"))
        assert {f"titanic_survival_onnx/models/{name}/model.onnx" for name in ("Boosted", "Team")} <= set(shipped)
        assert manifest["not_converted"] == {}
        with zipfile.ZipFile(packages / "titanic_survival-1.1.1+titanic-py3-none-any.whl") as wheel:
            assert wheel.read("titanic_survival/features.py").decode() == FEATURES_PY
            team = json.loads(wheel.read("titanic_survival/models/Team/metadata.json"))
            boosted = json.loads(wheel.read("titanic_survival/models/Boosted/metadata.json"))
            metadata = wheel.read("titanic_survival-1.1.1+titanic.dist-info/METADATA").decode()
        assert team["factory"] == "features:make_pipeline" and team["params"] == {"C": 0.5}
        assert set(team["package_code"]) == {"features.py"}
        assert boosted["estimator"] == "lightgbm.sklearn.LGBMClassifier"
        assert boosted["params"]["n_estimators"] == 30 and boosted["training_environment"]["lightgbm"] == "4.7.0"
        assert "Requires-Dist: lightgbm<4.8,>=4.7" in metadata  # derived from the pickle
        assert "skl2onnx" not in metadata  # imported only inside register_onnx_converters, which the release calls
        assert "Name: titanic-survival\n" in metadata  # the model card is the description
        assert "Summary: Who survived the Titanic, by the data team\n" in metadata  # make rename DESCRIPTION=
        assert "# titanic-survival 1.1.1+titanic" in metadata and "import titanic_survival" in metadata
        assert "pip install titanic-survival==1.1.1+titanic" in metadata and "mymodel" not in metadata
        lock = (repo / "releases/titanic-survival-1.1.1+titanic.txt").read_text()
        assert "titanic-survival==1.1.1+titanic" in lock and lock.count("--hash=sha256:") == 2

        # A fresh venv, pip, the test index serving the runtime dependencies, no repository.
        readme.next("python3 -m venv")
        predicted = readme.next("../consumer/bin/python -c").stdout
        assert predicted.startswith("1.1.1+titanic ") and "probability_1" in predicted, predicted
        report = json.loads(run([consumer / "python", "-I", "-c", CONSUMER], cwd=outside, env=consumer_env()).stdout)
        assert report["from"].startswith(str(tmp_path / "consumer")) and not any(str(repo) in p
                                                                                 for p in report["sys_path"])
        assert report["models"] == ["Boosted", "Team"]
        assert report["transformer"] == "titanic_survival.features.LogFare"  # the team's class, from the wheel
        assert report["boosted"].startswith("lightgbm")
        for name, prediction in report["predictions"].items():
            assert prediction["prediction"] in ("0", "1", 0, 1), (name, prediction)
            assert 0.5 < prediction["probability_1"] <= 1, (name, prediction)  # a first-class woman survives
        check_the_onnx_twin_predicts_as_the_package(consumer / "python", onnx_venv, index, tmp_path)
        validated = readme.next("../consumer/bin/titanic-survival validate").stdout
        lightgbm = next(line.split() for line in validated.splitlines() if line.startswith("lightgbm "))
        assert lightgbm == ["lightgbm", "4.7.0", ">=4.7,<4.8", "4.7.0", "yes"], validated
        by_module = run([consumer / "python", "-m", "titanic_survival", "info"], cwd=outside, env=consumer_env()).stdout
        by_script = run([consumer / "titanic-survival", "info"], cwd=outside, env=consumer_env()).stdout
        assert by_module == by_script and by_module.startswith("titanic-survival 1.1.1+titanic (data tag: titanic)")
        # The release notes as text (before: one line of raw JSON)
        assert by_module.splitlines()[1].startswith("version: patch (logic change): first release"), by_module
        assert "gate: accuracy, higher is better, max_accuracy_drop 0.01" in by_module and "{" not in by_module
        assert "mymodel" not in by_module + validated

        # The team edits its module: a logic change, released as a patch; make diff names the module.
        readme.next("sed -i")
        second = readme.next("make release").stdout
        assert "released titanic-survival 1.1.2+titanic" in second, second
        assert "package module titanic_survival/features.py changed" in second, second
        diff = readme.next("make diff").stdout
        assert "package module titanic_survival/features.py changed (sha256 " in diff and "patch" in diff, diff
        assert "mymodel" not in second + diff  # every message follows the name

        # Upgraded, then rolled back by pin, with pip; a fresh uv venv the same.
        readme.next('../consumer/bin/pip install')
        assert installed_version(consumer / "python", outside) == "1.1.2+titanic"
        readme.next('../consumer/bin/pip install')
        assert installed_version(consumer / "python", outside) == "1.1.1+titanic"
        readme.next("uv venv")
        uv_python = tmp_path / "consumer-uv/bin/python"
        assert installed_version(uv_python, outside) == "1.1.2+titanic"
        readme.next("uv pip install")
        assert installed_version(uv_python, outside) == "1.1.1+titanic"
        uv_predicted = run([uv_python, "-I", "-c", CONSUMER], cwd=outside, env=consumer_env()).stdout
        assert json.loads(uv_predicted)["transformer"] == "titanic_survival.features.LogFare"
        readme.done()

        # Channels follow the name.
        promoted = make(repo, "promote", index, "VERSION=1.1.2+titanic", "CHANNEL=prod").stdout
        channel = f"http://127.0.0.1:{index['INDEX_PORT']}/channels/prod/simple/"
        assert "promoted titanic-survival 1.1.2+titanic to prod (promotion 1)" in promoted
        assert f"pip install --index-url {channel} titanic-survival " in promoted and "mymodel" not in promoted
        request = urllib.request.Request(f"{channel}titanic-survival/",
                                         headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        served = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert served["versions"] == ["1.1.2+titanic"]
        channels = make(repo, "channels", index).stdout
        [row] = [line.split() for line in channels.splitlines() if line.startswith("prod ")]
        assert row[:3] == ["prod", "1", "1.1.2+titanic"] and row[4] == "mymodel", channels  # the upload credential's user
        assert "mymodel" not in channels.replace(" mymodel ", " "), channels  # (INDEX_USER), never the package
        assert not list(packages.glob("titanic_survival_prod-*"))  # a view, no channel package

        # A module edited after training: make build refuses to ship code the models were not trained with.
        features = repo / "src/titanic_survival/features.py"
        features.write_text(features.read_text().replace("OFFSET = 2.0", "OFFSET = 3.0"))
        stale = make(repo, "build", index, check=False)
        assert_clean_error(stale, "src/titanic_survival/features.py differs from the one the model 'Boosted' was "
                                  "trained with; run make train")
        assert not list((repo / "dist").glob("titanic_survival-1.1.3*"))

        # Another team's package released to the same index: its built files uploaded and verified by make upload.
        check_two_packages_on_one_index(tmp_path, index, released)
    finally:
        pipeline(repo, index, "index-stop", check=False)


def check_two_packages_on_one_index(tmp_path: Path, index: dict[str, str], released) -> None:
    newer = released.versions[1]
    other = copy_repo(tmp_path / "other")
    (other / "dist").mkdir()
    for name in (f"mymodel-{newer}-py3-none-any.whl", f"mymodel-{newer}.tar.gz"):
        shutil.copy2(Path(released.env["INDEX_DIR"]) / name, other / "dist" / name)
    uploaded = make(other, "upload", index, f"VERSION={newer}").stdout
    assert f"mymodel=={newer}" in uploaded, uploaded
    url = index_url(index)
    status, body = get(url)
    page = body.decode()
    assert status == 200
    rows = {part.split('"', 1)[0]: part.split("</tr>", 1)[0] for part in page.split('<tr data-package="')[1:]}
    assert list(rows) == ["mymodel", "titanic-survival"]
    assert f"pip install --index-url {url}simple/ mymodel=={newer}" in rows["mymodel"]
    assert f"pip install --index-url {url}simple/ titanic-survival==1.1.2+titanic" in rows["titanic-survival"]

    from selenium.webdriver.common.by import By

    from tests.integration import browser

    chromium = browser.start()
    try:
        chromium.get(url)
        listed = chromium.find_elements(By.CSS_SELECTOR, "#packages tbody tr")
        assert [r.get_attribute("data-package") for r in listed] == ["mymodel", "titanic-survival"]
        text = chromium.find_element(By.TAG_NAME, "body").text
        assert f"pip install --index-url {url}simple/ mymodel=={newer}" in text
        listed[1].find_element(By.LINK_TEXT, "titanic-survival").click()
        assert chromium.find_element(By.TAG_NAME, "h1").text == "titanic-survival"
        assert chromium.find_element(By.ID, "summary").text == "Who survived the Titanic, by the data team"
        versions = chromium.find_elements(By.CSS_SELECTOR, "#versions tbody tr")
        assert [r.get_attribute("data-version") for r in versions] == ["1.1.2+titanic", "1.1.1+titanic"]
    finally:
        chromium.quit()
