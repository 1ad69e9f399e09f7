"""The training data of a model package, as published by its release pipeline.

``path()`` is the data file (Parquet), ``frame()`` the data as a pandas DataFrame with the
types the models were trained from (pandas and pyarrow are imported only then),
``metadata()`` what the release recorded about it: the sha256 of the data and of the file,
rows, columns and their types, source, target and data tag.
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
    """The data file, as the release wrote it."""
    resource = importlib.resources.files(__name__) / metadata()["file"]
    return _kept.enter_context(importlib.resources.as_file(resource))


def frame():
    """The data as a pandas DataFrame, its columns in their order and types, its rows in theirs."""
    import pandas

    if metadata().get("format") == "parquet":
        return pandas.read_parquet(path())
    return pandas.read_csv(path())
