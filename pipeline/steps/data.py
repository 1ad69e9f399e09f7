"""Load the training data (the offline Titanic copy or a CSV) and fingerprint it."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import MAX_CLASSES_WITHOUT_TASK, REGRESSION, REPO, TITANIC_SOURCE, DatasetConfig
from pipeline.errors import DataError

TITANIC_PACKAGE = "sklearn.datasets.tests.data.openml.id_40945"
TITANIC_FILE = "data-v1-dl-16826755.arff.gz"


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame  # the feature columns and the target, nothing else
    features: tuple[str, ...]
    target: str
    source: str
    sha256: str

    @property
    def rows(self) -> int:
        return len(self.frame)


def published_source(source: str) -> str:
    """What a release publishes of where its data came from: the built-in source's name, or a file's
    name alone. A path (``/home/ana/data/mydata.csv``, a DATA_FILE written out in full) says where the
    release machine keeps its files: the data's identity is its sha256, published beside this.

    >>> published_source("/home/ana/data/mydata.csv"), published_source("data/wine.csv"), published_source("openml-titanic")
    ('mydata.csv', 'wine.csv', 'openml-titanic')
    """
    return source if source == TITANIC_SOURCE else Path(source).name


def load_dataset(config: DatasetConfig, data_file: str | Path | None = None) -> Dataset:
    """The configured dataset (or ``data_file``), checked for what training needs."""
    source = str(data_file) if data_file else config.source
    if source == TITANIC_SOURCE:
        frame, digest = _read_titanic()
    else:
        path = Path(source)
        frame, digest = _read_csv(path if path.is_absolute() else REPO / path)
    return Dataset(_check(frame, config, source), config.features, config.target, source, digest)


def _read_titanic() -> tuple[pd.DataFrame, str]:
    try:
        resource = importlib.resources.files(TITANIC_PACKAGE) / TITANIC_FILE
        raw = resource.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        import sklearn

        raise DataError(
            f"the offline Titanic copy ({TITANIC_PACKAGE}/{TITANIC_FILE}) is not in the installed "
            f"scikit-learn {sklearn.__version__}; install the pinned one (make venv) or point the "
            "pipeline at a CSV: make release DATA_FILE=path/to/titanic.csv"
        ) from None
    from sklearn.externals import _arff  # scikit-learn's own ARFF reader for its OpenML files

    arff = _arff.load(gzip.decompress(raw).decode("utf-8"))
    frame = pd.DataFrame(arff["data"], columns=[name for name, _ in arff["attributes"]])
    return frame, hashlib.sha256(raw).hexdigest()


def _read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; check DATA_FILE or [dataset] source in dataset.toml")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"data file {path} is empty; give a CSV with a header row and data rows")
    try:
        frame = pd.read_csv(io.BytesIO(raw))  # the bytes just fingerprinted, read once
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"data file {path} is not a readable CSV ({reason}); give a comma-separated file with a header row") from None
    return frame, hashlib.sha256(raw).hexdigest()


def _check(frame: pd.DataFrame, config: DatasetConfig, source: str) -> pd.DataFrame:
    wanted = (*config.features, config.target)
    missing = [column for column in wanted if column not in frame.columns]
    if config.target in missing:
        raise DataError(f"{source}: the target column {config.target!r} is missing (columns: {', '.join(map(str, frame.columns))}); "
                        "set [dataset] target in dataset.toml")
    if missing:
        raise DataError(f"{source}: feature columns {', '.join(missing)} are missing; "
                        "add them to the data or change the feature lists in dataset.toml")
    frame = frame.loc[:, list(wanted)].copy()
    frame = frame[frame[config.target].notna()]
    if len(frame) < 2 * max(config.cv_folds, 2):
        raise DataError(f"{source}: only {len(frame)} rows have a target value; training needs at least {2 * max(config.cv_folds, 2)}")
    if config.task == REGRESSION:
        frame[config.target] = _numeric_target(frame[config.target], config.target, source)
    else:
        _check_classes(frame[config.target], config, source)
    for column in config.features:
        if frame[column].isna().all():
            raise DataError(f"{source}: feature column {column!r} is all missing; fill it or remove it from dataset.toml")
    for column in config.numeric_features:
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & converted.isna()
        if bad.any():
            row = bad.idxmax()
            raise DataError(f"{source}: numeric column {column!r} holds {frame.at[row, column]!r} at row {row}; "
                            "fix the value or list the column under categorical_features")
        frame[column] = converted.astype("float64")
    for column in config.categorical_features:
        frame[column] = frame[column].map(lambda v: v if pd.isna(v) else str(v)).astype("object")
    if config.task != REGRESSION:
        frame[config.target] = frame[config.target].astype(str)
    return frame.reset_index(drop=True)


def _numeric_target(target: pd.Series, name: str, source: str) -> pd.Series:
    converted = pd.to_numeric(target, errors="coerce")
    bad = converted.isna() | ~np.isfinite(converted.astype("float64"))
    if bad.any():
        row = bad.idxmax()
        raise DataError(f"{source}: the regression target {name!r} holds {target.at[row]!r} at row {row}, not a number; "
                        "fix the value (or drop the row), or set [dataset] task = \"classification\" for class labels")
    return converted.astype("float64")


def _check_classes(target: pd.Series, config: DatasetConfig, source: str) -> None:
    """Enough classes, each with rows enough for the cross-validation folds of the training split."""
    counts = target.astype(str).value_counts()
    if len(counts) < 2:
        raise DataError(f"{source}: the target {config.target!r} has one class ({counts.index[0]!r}); a classifier needs at least two")
    numeric = pd.to_numeric(target, errors="coerce").notna().all()
    if numeric and len(counts) > MAX_CLASSES_WITHOUT_TASK and not config.task_declared:
        raise DataError(f"{source}: the target {config.target!r} is numeric with {len(counts)} distinct values, a classifier "
                        "would learn one class per value; set [dataset] task = \"regression\" in dataset.toml "
                        "(or task = \"classification\" if they are class codes)")
    needed = math.ceil(config.cv_folds / (1 - config.test_size))  # cv_folds rows in the training split
    thin = counts[counts < needed]
    if len(thin):
        label, rows = thin.index[-1], int(thin.iloc[-1])
        raise DataError(f"{source}: the class {label!r} of the target {config.target!r} has {rows} row{'s' * (rows != 1)}, "
                        f"fewer than the {config.cv_folds} cross-validation folds need ({needed} rows with test_size = "
                        f"{config.test_size}); add rows of it, merge or drop the class, or lower [training] cv_folds")
