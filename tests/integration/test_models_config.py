"""The [models] tables of dataset.toml through make, as a team edits them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import assert_clean_error, copy_repo, index_env, make

pytestmark = pytest.mark.integration


@pytest.fixture
def clone(tmp_path):
    return copy_repo(tmp_path / "repo"), index_env(tmp_path)


def edit_models(repo, old: str, new: str) -> None:
    config = repo / "dataset.toml"
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new), encoding="utf-8")


def test_a_bad_models_table_stops_train_and_release_before_anything_runs(clone):
    repo, env = clone
    edit_models(repo, "n_estimators = 100", "n_estimator = 300")
    for target in ("train", "release"):
        assert_clean_error(make(repo, target, env, check=False),
                           "models.RandomForestClassifier.n_estimator is not a parameter of RandomForestClassifier",
                           "did you mean n_estimators?")
    assert not (repo / "src" / "mymodel" / "models").exists()  # nothing trained
    assert not Path(env["INDEX_STATE"]).exists() and not Path(env["INDEX_DIR"]).exists()  # no index started


def test_deleting_the_svc_table_ships_the_other_two(clone):
    repo, env = clone
    edit_models(repo, '[models.SVC]\nestimator = "SVC"\ncalibrated = true\nrandom_state = "seed"\n', "")
    assert "saved 2 models" in make(repo, "train", env).stdout
    assert sorted(p.name for p in (repo / "src" / "mymodel" / "models").iterdir() if p.is_dir()) == [
        "LogisticRegression", "RandomForestClassifier"]
