"""Expensive shared state: one repository copy that released twice to a real index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import copy_repo, fill_index, index_env, make, pipeline


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
