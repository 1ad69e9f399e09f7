"""The packaged files: listing, metadata and integrity-checked model bytes.

Reads with importlib.resources only; imports neither scikit-learn nor joblib.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib.resources import files
from typing import Any

from mymodel.errors import IntegrityError, UnknownModelError

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"


def _models():
    return files("mymodel") / "models"


@functools.cache
def manifest() -> dict[str, Any]:
    """What the build recorded: version, data tag, runtime pins and file hashes."""
    resource = _models() / MANIFEST_FILE
    if not resource.is_file():
        return {"files": {}, "requires": {}, "release": {}}  # a source checkout, never built
    return json.loads(resource.read_text(encoding="utf-8"))


def list_models() -> list[str]:
    folder = _models()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / MODEL_FILE).is_file())


def check_name(name: str) -> str:
    available = list_models()
    if name not in available:
        raise UnknownModelError(f"no model named {name!r} in this package; available: {', '.join(available) or 'none'}")
    return name


@functools.cache
def model_metadata(name: str) -> dict[str, Any]:
    return json.loads(verified_bytes(f"{check_name(name)}/{METADATA_FILE}"))


def verified_bytes(relative: str) -> bytes:
    """A packaged file's bytes, after checking them against the build manifest."""
    data = (_models() / relative).read_bytes()
    expected = manifest()["files"].get(relative)
    if expected is None:
        if manifest()["files"]:
            raise IntegrityError(f"{relative} is not listed in the package manifest; reinstall the package")
        return data  # a source checkout: nothing was recorded to check against
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise IntegrityError(
            f"{relative} has sha256 {actual}, but the build recorded {expected}: the installed file was "
            "changed, so it is not loaded; reinstall the package (pip install --force-reinstall)")
    return data
