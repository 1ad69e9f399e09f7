"""The training data identified by its bytes' sha256 before anything parses it (pipeline/steps/data.py
parses it): a release whose models all come from the cache never reads it as a table, nor imports pandas."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import REPO, TITANIC_SOURCE, DatasetConfig
from pipeline.errors import DataError

TITANIC_PACKAGE = "sklearn.datasets.tests.data.openml.id_40945"
TITANIC_FILE = "data-v1-dl-16826755.arff.gz"


@dataclass(frozen=True)
class DataInput:
    """The training data identified by its bytes' sha256 before anything parses them (data.load_input
    does): a release whose models all come from the cache (pipeline/steps/train_cache.py) never does."""

    data_file: str | None  # what load_dataset reads (None: [dataset] source)
    source: str  # what training records as the data's source
    sha256: str


def fingerprint(config: DatasetConfig, data_file: str | Path | None = None) -> DataInput:
    """The data load_dataset would read, by its bytes' sha256 (read in blocks, never parsed)."""
    source = str(data_file) if data_file else config.source
    if source == TITANIC_SOURCE:
        path = titanic_path()
    else:
        path = Path(source) if Path(source).is_absolute() else REPO / source
        if not path.is_file():
            raise DataError(f"data file {path} does not exist; check DATA_FILE or [dataset] source in dataset.toml")
    with open(path, "rb") as handle:
        return DataInput(str(data_file) if data_file else None, source, hashlib.file_digest(handle, "sha256").hexdigest())


def titanic_path() -> Path:
    """The offline Titanic file inside the installed scikit-learn, found without importing it (that takes a second)."""
    spec = importlib.util.find_spec(TITANIC_PACKAGE.partition(".")[0])
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder, *TITANIC_PACKAGE.split(".")[1:], TITANIC_FILE)
        if path.is_file():
            return path
    raise no_titanic()


def no_titanic() -> DataError:
    version = importlib.metadata.version("scikit-learn") if importlib.util.find_spec("sklearn") else "(none)"
    return DataError(
        f"the offline Titanic copy ({TITANIC_PACKAGE}/{TITANIC_FILE}) is not in the installed "
        f"scikit-learn {version}; install the pinned one (make venv) or point the "
        "pipeline at a CSV: make release DATA_FILE=path/to/titanic.csv"
    )
