"""A renamed package (make rename NAME=titanic-survival) released once, installed by pip and used by its name."""

from __future__ import annotations

import json
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.helpers import GIT_IDENTITY, consumer_env, copy_repo, fill_index, index_env, make, pipeline, run

pytestmark = pytest.mark.integration

ROW = {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"}


def test_a_renamed_package_is_released_installed_and_promoted_by_its_name(pip_venv, tmp_path):
    repo, env = copy_repo(tmp_path / "repo"), index_env(tmp_path)
    fill_index(Path(env["INDEX_DIR"]))
    renamed = make(repo, "rename", env, "NAME=titanic-survival").stdout
    run(["git", "commit", "-qm", "Rename the package to titanic-survival"], cwd=repo, env={**GIT_IDENTITY, **env})
    try:
        released = make(repo, "release", env).stdout
        assert "renamed the package mymodel -> titanic-survival" in renamed
        assert "released titanic-survival 1.1.1+titanic" in released  # a new project: its first version
        simple = f"http://127.0.0.1:{env['INDEX_PORT']}/simple/"
        assert f"titanic-survival==1.1.1+titanic" in released
        assert sorted(p.name for p in Path(env["INDEX_DIR"]).glob("titanic_survival-*")) == [
            "titanic_survival-1.1.1+titanic-py3-none-any.whl", "titanic_survival-1.1.1+titanic.tar.gz"]
        assert not list(Path(env["INDEX_DIR"]).glob("mymodel-*"))
        wheel = Path(env["INDEX_DIR"]) / "titanic_survival-1.1.1+titanic-py3-none-any.whl"
        with zipfile.ZipFile(wheel) as archive:
            metadata = archive.read("titanic_survival-1.1.1+titanic.dist-info/METADATA").decode()
            assert "titanic_survival/models/manifest.json" in archive.namelist()
        assert "Name: titanic-survival\n" in metadata  # the model card is the description
        assert "# titanic-survival 1.1.1+titanic" in metadata and "import titanic_survival" in metadata
        assert "pip install titanic-survival==1.1.1+titanic" in metadata and "mymodel" not in metadata
        lock = (repo / "releases/titanic-survival-1.1.1+titanic.txt").read_text()
        assert "titanic-survival==1.1.1+titanic" in lock and lock.count("--hash=sha256:") == 2
        # the index owns the name it was started with: the registry page is about titanic-survival
        page = urllib.request.urlopen(f"http://127.0.0.1:{env['INDEX_PORT']}/", timeout=30).read().decode()
        assert "titanic-survival" in page and "1.1.1+titanic" in page

        python, bin_dir = pip_venv(tmp_path / "venv"), tmp_path / "venv/bin"
        run([python, "-m", "pip", "install", "--quiet", "--index-url", simple, "titanic-survival==1.1.1+titanic"],
            env=consumer_env())
        used = run([python, "-c", "import json, titanic_survival as p; "
                    f"print(json.dumps([p.__version__, p.list_models(), p.predict('SVC', {ROW!r})['prediction'].tolist()]))"],
                   cwd=tmp_path, env=consumer_env()).stdout
        version, models, prediction = json.loads(used)
        assert version == "1.1.1+titanic" and models == ["LogisticRegression", "RandomForestClassifier", "SVC"]
        assert len(prediction) == 1
        by_module = run([python, "-m", "titanic_survival", "info"], cwd=tmp_path, env=consumer_env()).stdout
        by_script = run([bin_dir / "titanic-survival", "info"], cwd=tmp_path, env=consumer_env()).stdout
        assert by_module == by_script and by_module.startswith("titanic-survival 1.1.1+titanic (data tag: titanic)")
        assert "SVC" in by_module

        promoted = make(repo, "promote", env, "VERSION=1.1.1+titanic", "CHANNEL=prod").stdout
        assert "titanic-survival-prod 1" in promoted
        assert [p.name for p in Path(env["INDEX_DIR"]).glob("titanic_survival_prod-*")] == [
            "titanic_survival_prod-1-py3-none-any.whl"]
    finally:
        pipeline(repo, env, "index-stop", check=False)
