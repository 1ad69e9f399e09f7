"""The team's own modules in the package folder (src/mymodel/<module>.py).

They ship in the wheel and the sdist beside the package's code, a [models.<Name>]
table names a function of one as its factory, and their bytes are part of the
contract: training records each one's sha256 in every model's metadata.json, so a
change to one is a logic change that make diff names.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from pipeline.package.own_package import store
from pipeline.config import IMPORT_NAME, PACKAGE_DIR


# The package's own code: any other .py file directly in src/mymodel is a team module.
PACKAGE_SOURCES = ("__init__.py", "__main__.py", "contract.py", "errors.py", "environment.py", "published.py",
                   "schema.py", "store.py", "version.py", "py.typed")
METADATA_KEY = "package_code"  # in metadata.json: {"features.py": "<sha256>"}, only when there are team modules
# A team module's function registering skl2onnx converters for its own classes (update_registered_converter):
# the release calls it before converting to ONNX; the installed package never does, so what it imports (skl2onnx)
# is no runtime requirement (pipeline/steps/requirements.py).
ONNX_HOOK = "register_onnx_converters"


def team_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The file names of the team's modules, sorted."""
    return sorted(p.name for p in package_dir.glob("*.py") if p.is_file() and p.name not in PACKAGE_SOURCES)


def team_code(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """Each team module's sha256, by file name."""
    return {name: store.sha256_file(package_dir / name) for name in team_modules(package_dir)}


class TeamHookError(Exception):
    """A team module's ONNX_HOOK (or the module itself) failed: the message names the file."""


def register_onnx_converters(package: str = IMPORT_NAME, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Call every team module's ONNX_HOOK (imported as ``<package>.<module>``, as training imports it);
    the file names of the modules that have one."""
    from pipeline.steps.team_functions import one_line

    called = []
    for name in team_modules(package_dir):
        try:
            hook = getattr(importlib.import_module(f"{package}.{name.removesuffix('.py')}"), ONNX_HOOK, None)
            if callable(hook):
                hook()
                called.append(name)
        except Exception as exc:  # noqa: BLE001 - the team's code: its failure is the conversion's reason
            raise TeamHookError(f"src/{package}/{name}: importing it or its {ONNX_HOOK}() raised {one_line(exc)}; "
                                "fix the module") from None
    return called
