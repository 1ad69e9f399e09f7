"""The training data identified by its bytes' sha256 before anything parses it (pipeline/steps/data.py
parses it): a release whose models all come from the cache never reads it as a table, nor imports pandas.

A source of files (the offline Titanic copy, a file, a folder, a glob: pipeline/steps/sources.py) is
known by its files' bytes; the team's loader (``"<module>:<function>"``) only by what it returns, so
its rows are read first and known by their frame's sha256 (data.loaded_input).
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import REPO, TITANIC_SOURCE, DatasetConfig
from pipeline.errors import DataError
from pipeline.steps.team_functions import is_reference

TITANIC_PACKAGE = "sklearn.datasets.tests.data.openml.id_40945"
TITANIC_FILE = "data-v1-dl-16826755.arff.gz"
GLOB_CHARACTERS = "*?["
DATA_SUFFIXES = (".parquet", ".pq", ".csv")  # the files of a data folder


@dataclass(frozen=True)
class DataInput:
    """The training data identified by its bytes' sha256 before anything parses them (data.load_input
    does): a release whose models all come from the cache (pipeline/steps/train_cache.py) never does."""

    data_file: str | None  # what load_dataset reads (None: [dataset] source)
    source: str  # what training records as the data's source
    sha256: str
    read: Any = None  # the data.Data already read (a team loader's rows: data.loaded_input), else None


def fingerprint(config: DatasetConfig, data_file: str | Path | None = None) -> DataInput | None:
    """The data load_dataset would read, by its files' bytes (read in blocks, never parsed); None for a
    team loader, known only by the rows it returns (data.loaded_input)."""
    source = str(data_file) if data_file else config.source
    files = source_files(source, "DATA_FILE" if data_file else "[dataset] source")
    return None if files is None else DataInput(str(data_file) if data_file else None, source, files_sha256(files))


def files_sha256(files: list[Path]) -> str:
    """One file's sha256, or for several the sha256 of their names and sha256s in order."""
    digests = []
    for path in files:
        with open(path, "rb") as handle:
            digests.append(hashlib.file_digest(handle, "sha256").hexdigest())
    if len(files) == 1:
        return digests[0]
    return hashlib.sha256("".join(f"{p.name}\0{d}\n" for p, d in zip(files, digests)).encode()).hexdigest()


def source_files(source: str, key: str = "[dataset] source") -> list[Path] | None:
    """The files ``source`` names, in the order they are read; None for the team's loader. A DataError
    when it names no file (``key``: where it was given)."""
    if source == TITANIC_SOURCE:
        return [titanic_path()]
    path = source_path(source)
    if is_reference(source) and not path.exists():
        return None
    if any(c in source for c in GLOB_CHARACTERS) and not path.exists():
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"{key} = {source!r} matches no file; check the pattern (relative to the repository: "
                            f"{REPO})")
        return files
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
        if not files:
            raise DataError(f"data folder {path} holds no .parquet or .csv file; put the data files there or check "
                            f"{key}")
        return files
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; check DATA_FILE or [dataset] source in dataset.toml")
    return [path]


def published_source(source: str) -> str:
    """What a release publishes of where its data came from: the built-in source's name, or a file's
    name alone. A path (``/home/ana/data/mydata.csv``, a DATA_FILE written out in full) says where the
    release machine keeps its files: the data's identity is its sha256, published beside this.

    >>> published_source("/home/ana/data/mydata.csv"), published_source("data/wine.csv"), published_source("openml-titanic")
    ('mydata.csv', 'wine.csv', 'openml-titanic')
    """
    return source if source == TITANIC_SOURCE else Path(source).name


def source_path(source: str) -> Path:
    """A source's path: relative ones are relative to the repository's root."""
    path = Path(source)
    return path if path.is_absolute() else REPO / path


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
