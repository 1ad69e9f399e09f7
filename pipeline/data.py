"""Load the training data (the offline Titanic copy or a CSV) and fingerprint it."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.config import REPO, TITANIC_SOURCE, DatasetConfig
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
    classes = frame[config.target].astype(str).unique()
    if len(classes) < 2:
        raise DataError(f"{source}: the target {config.target!r} has one class ({classes[0]!r}); a classifier needs at least two")
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
    frame[config.target] = frame[config.target].astype(str)
    return frame.reset_index(drop=True)
