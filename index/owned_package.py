"""The model package this index owns, named when it starts (``python -m index.server --package NAME``,
default ``mymodel``): uploads and the simple pages guard it and its ``<name>-<channel>`` projects, the
registry page is about it. The registry page reads wheels with the package's own modules
(src/<import name>/contract.py, published.py: stdlib only), imported by that name.

One index process, one package: ``configure`` runs before the registry modules are imported
(index/server.py does it first), which bind the package's modules when they load.
"""

from __future__ import annotations

import importlib
import types

from packaging.utils import canonicalize_name

from index.settings import PACKAGE

_configured = {"name": PACKAGE}


def configure(name: str) -> None:
    _configured["name"] = canonicalize_name(name)


def name() -> str:
    """The distribution's name, normalised (PEP 503)."""
    return _configured["name"]


def import_name() -> str:
    """Its import name: the folder in its wheels."""
    return name().replace("-", "_")


def module(submodule: str) -> types.ModuleType:
    """One of the package's own modules, e.g. ``module("contract")``."""
    return importlib.import_module(f"{import_name()}.{submodule}")
