"""The team's own modules in the package folder (src/mymodel/<module>.py).

They ship in the wheel and the sdist beside the package's code, a [models.<Name>]
table names a function of one as its factory, and their bytes are part of the
contract: training records each one's sha256 in every model's metadata.json, so a
change to one is a logic change that make diff names.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.package.own_package import store
from pipeline.config import PACKAGE_DIR


# The package's own code: any other .py file directly in src/mymodel is a team module.
PACKAGE_SOURCES = ("__init__.py", "__main__.py", "contract.py", "errors.py", "environment.py", "published.py",
                   "schema.py", "store.py", "version.py", "py.typed")
METADATA_KEY = "package_code"  # in metadata.json: {"features.py": "<sha256>"}, only when there are team modules


def team_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The file names of the team's modules, sorted."""
    return sorted(p.name for p in package_dir.glob("*.py") if p.is_file() and p.name not in PACKAGE_SOURCES)


def team_code(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """Each team module's sha256, by file name."""
    return {name: store.sha256_file(package_dir / name) for name in team_modules(package_dir)}
