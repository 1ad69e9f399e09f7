"""One data tag everywhere: the DATA= of a release is the tag in every model's metadata.json,
the model card and the manifest, never dataset.toml's [dataset] tag beside it."""

from __future__ import annotations

import json
import zipfile
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.helpers import copy_repo, index_env, make, pipeline

pytestmark = pytest.mark.integration


def tags_in_wheel(wheel: Path) -> dict[str, object]:
    """Where a built wheel names its data tag: the manifest, each model's metadata, the card."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("mymodel/models/manifest.json"))
        models = {name.split("/")[2]: json.loads(archive.read(name))["data"]["tag"]
                  for name in names if name.endswith("/metadata.json")}
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        card = message_from_bytes(archive.read(metadata)).get_payload()
    return {"manifest": manifest["data_tag"], "models": models, "card": card}


def trained_tags(repo: Path) -> set[str]:
    return {json.loads(p.read_text())["data"]["tag"] for p in (repo / "src/mymodel/models").glob("*/metadata.json")}


def test_the_data_tag_of_a_release_is_the_one_in_every_metadata_the_card_and_the_manifest(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    env = index_env(tmp_path)
    try:
        out = make(repo, "release", env, "DATA=evil").stdout
        assert "released mymodel 1.1.1+evil" in out
        published = tags_in_wheel(Path(env["INDEX_DIR"]) / "mymodel-1.1.1+evil-py3-none-any.whl")
        assert published["manifest"] == "evil"
        assert published["models"] == {"LogisticRegression": "evil", "RandomForestClassifier": "evil", "SVC": "evil"}
        assert "- Data tag: `evil` (source `openml-titanic`" in published["card"] and "`titanic`" not in published["card"]
        assert trained_tags(repo) == {"evil"}  # what make diff and the next release compare with
        make(repo, "train", env, "DATA=other")
        assert trained_tags(repo) == {"other"}

        # Models trained under one tag, built as a version with another: the version's tag everywhere.
        make(repo, "build", env, "VERSION=1.1.2+third")
        rebuilt = tags_in_wheel(repo / "dist" / "mymodel-1.1.2+third-py3-none-any.whl")
        assert rebuilt["manifest"] == "third" and set(rebuilt["models"].values()) == {"third"}
        assert "- Data tag: `third`" in rebuilt["card"]
    finally:
        pipeline(repo, env, "index-stop", check=False)
