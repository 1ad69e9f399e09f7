"""Fixtures of the unit tests."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.steps import team_functions
from tests.reaper import shut_down_worker_pools


@dataclass(frozen=True)
class TeamPackage:
    """A real package on sys.path standing in for src/mymodel, whose modules the pipeline imports
    (factories, fit functions, loaders, metrics): the repository's own package is left alone."""

    name: str
    folder: Path

    def write(self, module: str, code: str) -> None:
        (self.folder / f"{module}.py").write_text(textwrap.dedent(code))


@pytest.fixture
def team_package(tmp_path, monkeypatch) -> TeamPackage:
    name = f"team_{tmp_path.name}"
    folder = tmp_path / "src" / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(team_functions, "PACKAGE", name)
    # Training's cross-validations run in worker processes, which import the package (a fit function's module)
    # from the sys.path they started with: workers started before this folder was on it would not find it.
    shut_down_worker_pools()
    return TeamPackage(name, folder)
