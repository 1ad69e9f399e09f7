"""Release work keyed on digests, through make release: a model whose inputs did not change is not trained or
converted again, nothing changed means no training at all, the release is still what an uncached rebuild
gives (make verify), and a damaged, unwritable or disabled cache costs time, never a wrong file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.steps.onnx_export import FROM_CACHE
from tests.helpers import commit, copy_repo, edit_config, index_env, make, pipeline, train_quickly

pytestmark = pytest.mark.integration
MODELS = ("LogisticRegression", "RandomForestClassifier")  # train_quickly's


class Clone:
    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo, self.env = repo, env

    @property
    def cache(self) -> Path:
        return self.repo / ".cache" / "release"

    def release(self, *args: str, env: dict[str, str] | None = None) -> str:
        return make(self.repo, "release", env or self.env, *args).stdout

    def models(self) -> dict[str, str]:
        folder = self.repo / "src" / "mymodel" / "models"
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("model.*"))}


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone (a 10-tree forest and a logistic regression) that released once: its cache holds both models."""
    tmp = tmp_path_factory.mktemp("release-cache")
    repo = copy_repo(tmp / "repo")
    train_quickly(repo)
    env = index_env(tmp)
    env.pop("RELEASE_CACHE", None)  # the clone's own .cache/release, not the one the test run shares
    clone = Clone(repo, env)
    first = clone.release()
    assert "released mymodel 1.1.1+titanic" in first and "trained before" not in first
    yield clone
    pipeline(repo, clone.env, "index-stop", check=False)


def trained_before(output: str) -> list[str]:
    return [name for name in MODELS if f"trained before: {name} (" in output]


def test_nothing_changed_trains_nothing(clone):
    models = clone.models()
    output = clone.release()
    assert "is up to date (models byte-identical): nothing to release" in output
    assert trained_before(output) == list(MODELS)
    assert clone.models() == models


def test_one_changed_model_is_the_only_one_trained_and_the_release_is_reproducible(clone):
    edit_config(clone.repo, "max_iter = 1000", "max_iter = 1000\nC = 0.5")
    output = clone.release()
    assert trained_before(output) == ["RandomForestClassifier"]
    assert "onnx: LogisticRegression converted (" in output and FROM_CACHE not in output
    released = output.split("released mymodel ", 1)[1].split()[0]
    verified = make(clone.repo, "verify", clone.env, f"VERSION={released}").stdout
    assert "reproducible: the rebuilt wheel is byte-identical to the published one, and so is the mymodel-onnx wheel" \
        in verified


def test_changed_code_trains_again_and_finds_the_same_pickles_converted(clone):
    """Every model is fitted again in a new process (the pipeline's code is in every key); their pickles are
    byte for byte those of the earlier process, so their conversions come from the cache."""
    train_py = clone.repo / "pipeline" / "steps" / "train.py"
    train_py.write_text(train_py.read_text() + "\n# a change that changes nothing\n")
    commit(clone.repo, "a comment in the training code")
    output = clone.release()
    assert trained_before(output) == []
    assert [name for name in MODELS if f"onnx: {name} converted (" in output] == list(MODELS)
    assert output.count(FROM_CACHE) == len(MODELS)
    assert "is up to date (models byte-identical)" in output


def test_a_damaged_cache_is_trained_around_and_repaired(clone):
    models = clone.models()
    for entry in (clone.cache / "entries").rglob("*.json"):
        entry.write_text("{damaged")
    for stored in (clone.cache / "files").iterdir():
        stored.write_bytes(stored.read_bytes()[:-1])
    output = clone.release()
    assert trained_before(output) == [] and FROM_CACHE not in output
    assert "is up to date (models byte-identical)" in output and clone.models() == models
    assert trained_before(clone.release()) == list(MODELS)


def test_a_cache_that_cannot_be_written_or_is_off_changes_only_the_time(clone, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    output = clone.release(env={**clone.env, "RELEASE_CACHE": str(blocked / "cache")})
    assert trained_before(output) == [] and "is up to date (models byte-identical)" in output
    assert f"note: the release cache could not be written (" in output and str(blocked) in output
    before = sorted(clone.cache.rglob("*"))
    output = clone.release("RELEASE_CACHE=off")
    assert trained_before(output) == [] and "note: the release cache" not in output
    assert "is up to date (models byte-identical)" in output
    assert sorted(clone.cache.rglob("*")) == before


def test_the_same_models_released_again_draw_no_figure_and_rebuild_byte_identical(clone, tmp_path):
    """A warm release (the same models, BUMP=patch). Before: every curve figure was drawn again in each one,
    only because its legend names the new version and the baseline's."""
    clone.release("BUMP=patch")  # the curves of the version before as the baseline
    output = clone.release("BUMP=patch")
    assert trained_before(output) == list(MODELS)
    assert "figures: 10 SVG for 2 models (0 drawn, 10 from the cache)" in output, output
    released = output.split("released mymodel ", 1)[1].split()[0]
    # an empty cache: every figure drawn in another process, with the versions' names drawn as text
    verified = make(clone.repo, "verify", {**clone.env, "RELEASE_CACHE": str(tmp_path / "empty")},
                    f"VERSION={released}").stdout
    assert "figures: 10 SVG for 2 models (10 drawn, 0 from the cache)" in verified, verified
    assert "reproducible: the rebuilt wheel is byte-identical to the published one" in verified, verified
