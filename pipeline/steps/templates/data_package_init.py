"""The training data of a model package, as published by its release pipeline.

``path()`` is the data file, ``frame()`` the data as a pandas DataFrame (pandas is
imported only then), ``metadata()`` what the release recorded about it: sha256, rows,
columns and their types, source, target and data tag.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
from pathlib import Path

METADATA_FILE = "metadata.json"
_kept = contextlib.ExitStack()  # a path extracted from a zip import lives as long as the process


def metadata() -> dict:
    """What the release recorded about the data (metadata.json)."""
    return json.loads((importlib.resources.files(__name__) / METADATA_FILE).read_text(encoding="utf-8"))


def path() -> Path:
    """The data file, as it was read for training."""
    resource = importlib.resources.files(__name__) / metadata()["file"]
    return _kept.enter_context(importlib.resources.as_file(resource))


def frame():
    """The data as a pandas DataFrame, read as the training pipeline read it."""
    import pandas

    return pandas.read_csv(path())
