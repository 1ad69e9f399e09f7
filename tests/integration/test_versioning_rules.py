"""Versions derived from what changed: nothing -> nothing published; data or
hyperparameters -> patch; an input column -> minor, refused at patch (issue 8's walk-through)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from tests.helpers import assert_clean_error, commit, copy_repo, edit_config, index_env, make, pipeline
from tests.registry_wheels import release_files

pytestmark = pytest.mark.integration


def index_files(env: dict) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(env["INDEX_DIR"]).glob("mymodel-*")}


def release_notes(repo: Path, version: str) -> dict:
    with zipfile.ZipFile(repo / f"dist/mymodel-{version}-py3-none-any.whl") as wheel:
        return json.loads(wheel.read("mymodel/models/manifest.json"))["release"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules")
    repo = copy_repo(tmp / "repo")
    env = index_env(tmp)
    yield repo, env
    pipeline(repo, env, "index-stop", check=False)


def test_the_walk_through_of_issue_8(clone):
    repo, env = clone
    first = make(repo, "release", env).stdout
    assert "first release of this clone -> 1.1.1+titanic" in first and "released mymodel 1.1.1+titanic" in first
    assert release_notes(repo, "1.1.1+titanic")["bump"]["reasons"] == ["first release of this clone"]

    # Nothing changed: exit 0, nothing published, the clone's record untouched.
    before, recorded = index_files(env), (repo / "src/mymodel/version.py").read_text()
    again = make(repo, "release", env)
    assert "mymodel 1.1.1+titanic is up to date (models byte-identical): nothing to release" in again.stdout
    assert index_files(env) == before and (repo / "src/mymodel/version.py").read_text() == recorded

    # Another split seed: a data change, a patch, gated on the same rows for both versions.
    edit_config(repo, "seed = 0", "seed = 2")
    seeded = make(repo, "release", env).stdout
    assert "logic change against 1.1.1+titanic: split seed 0 -> 2" in seeded
    assert "released mymodel 1.1.2+titanic" in seeded
    gate = seeded.split("accuracy against 1.1.1+titanic:", 1)[1].split("==>", 1)[0]
    rows = [line for line in gate.splitlines() if line.startswith(("LogisticRegression", "RandomForest", "SVC"))]
    assert len(rows) == 3 and all("rows both splits held out (the split changed)" in row for row in rows)
    for row in rows:  # each on its own split, then both on the same rows, and the gated change
        own_published, own_new, same_published, same_new, change = (float(v) for v in row.split()[1:6])
        assert change == pytest.approx(same_new - same_published, abs=2e-4) and 0.5 < same_published <= 1
        assert (own_published, own_new) != (same_published, same_new)
    assert release_notes(repo, "1.1.2+titanic")["bump"]["kind"] == "logic"

    # An input column added: refused at patch before anything is built or uploaded; minor without BUMP.
    edit_config(repo, 'categorical_features = ["sex", "embarked"]', 'categorical_features = ["sex", "embarked", "cabin"]')
    before = index_files(env)
    refused = make(repo, "release", env, "BUMP=patch", check=False)
    assert_clean_error(refused, "BUMP=patch is too small: input column 'cabin' added, an interface change",
                       "use BUMP=minor (interface) or higher")
    assert "==> build" not in refused.stdout and index_files(env) == before
    interface = make(repo, "release", env).stdout
    assert "interface change against 1.1.2+titanic: input column 'cabin' added" in interface
    assert "released mymodel 1.2.0+titanic" in interface
    notes = release_notes(repo, "1.2.0+titanic")["bump"]
    assert notes["part"] == "minor" and notes["kind"] == "interface" and "input column 'cabin' added" in notes["reasons"]

    listed = make(repo, "versions", env).stdout
    assert [line.split()[0] for line in listed.splitlines() if line.startswith("1.")] == [
        "1.2.0+titanic", "1.1.2+titanic", "1.1.1+titanic"]
    diff = make(repo, "diff", env, "A=1.1.2+titanic", "B=1.2.0+titanic").stdout
    assert "cabin" in diff and "minor" in diff

    # Released records committed, then the suite's own copies still start from scratch.
    commit(repo, "releases")


def test_a_forced_small_bump_is_recorded(clone):
    repo, env = clone
    edit_config(repo, 'categorical_features = ["sex", "embarked", "cabin"]', 'categorical_features = ["sex", "embarked"]')
    forced = make(repo, "release", env, "BUMP=patch", "FORCE=1").stdout
    assert "released mymodel 1.2.1+titanic" in forced
    overridden = release_notes(repo, "1.2.1+titanic")["bump_overridden"]
    assert overridden == {"required": "minor", "used": "patch", "against": "1.2.0+titanic"}


def test_a_hyperparameter_change_is_a_patch_that_make_diff_names(clone):
    repo, env = clone
    edit_config(repo, "n_estimators = 100", "n_estimators = 150")
    out = make(repo, "release", env).stdout
    assert "logic change against 1.2.1+titanic" in out and "n_estimators 100 -> 150" in out
    assert "released mymodel 1.2.2+titanic" in out
    assert "the same held-out rows" in out
    diff = make(repo, "diff", env, "A=1.2.1+titanic", "B=1.2.2+titanic", "FORMAT=json").stdout
    assert "n_estimators 100 -> 150" in diff and json.loads(diff)


def test_a_yanked_version_is_shown_skipped_as_baseline_and_its_number_never_reused(clone):
    repo, env = clone
    make(repo, "yank", env, "VERSION=1.2.2+titanic", "REASON=bad forest")
    try:
        listed = make(repo, "versions", env).stdout
        assert re.search(r"^1\.2\.2\+titanic .*yanked: bad forest", listed, re.MULTILINE), listed
        edit_config(repo, "n_estimators = 150", "n_estimators = 120")
        out = make(repo, "release", env).stdout
        assert "logic change against 1.2.1+titanic" in out and "n_estimators 100 -> 120" in out
        assert "accuracy against 1.2.1+titanic" in out and "released mymodel 1.2.3+titanic" in out
    finally:
        make(repo, "unyank", env, "VERSION=1.2.2+titanic")


def test_a_baseline_without_models_is_refused_until_yanked_or_forced(clone, tmp_path):
    """A version dropped on the index by hand (no manifest) cannot be compared with: the release
    says how to get past it, and FORCE=1 releases without comparing and records that."""
    repo, env = clone
    version = "1.2.4+titanic"
    wheel, sdist = release_files(tmp_path, version, {"LogisticRegression": 0.8})
    stripped = tmp_path / "stripped.whl"
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(stripped, "w") as target:
        for item in source.infolist():
            if not item.filename.endswith("manifest.json"):
                target.writestr(item, source.read(item))
    os.replace(stripped, Path(env["INDEX_DIR"]) / wheel.name)
    os.replace(sdist, Path(env["INDEX_DIR"]) / sdist.name)
    recorded = (repo / "src/mymodel/version.py").read_text()
    before = index_files(env)

    refused = make(repo, "release", env, check=False)
    assert_clean_error(refused, f"cannot compare with {version}, the highest published version",
                       "has no mymodel/models/manifest.json", f"make yank VERSION={version}", "FORCE=1")
    assert index_files(env) == before and (repo / "src/mymodel/version.py").read_text() == recorded

    forced = make(repo, "release", env, "FORCE=1").stdout
    assert f"cannot compare with {version}" in forced and f"cannot score against {version}" in forced
    assert "released mymodel 1.2.5+titanic" in forced
    notes = release_notes(repo, "1.2.5+titanic")
    assert notes["comparison_skipped"]["against"] == version and notes["gate_skipped"]["against"] == version
    assert notes["bump"]["reasons"][0].startswith(f"not compared with {version} (FORCE=1)")
