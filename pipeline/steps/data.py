"""Load the training data ([dataset] source: pipeline/steps/sources.py), fingerprint it, check it for training.

The fingerprint is the sha256 of the frame's canonical form (pipeline/steps/frames.py), whatever
the source: the data package's Parquet file gives back a frame with the same sha256. Versions
released before recorded a CSV file's sha256 instead; ``file_sha256`` is that, for ``make verify``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import MAX_CLASSES_WITHOUT_TASK, REGRESSION, REPO, TITANIC_SOURCE, DatasetConfig
from pipeline.errors import DataError
from pipeline.steps.data_input import DataInput, fingerprint, published_source  # noqa: F401 (named here too)
from pipeline.package.own_package import store
from pipeline.steps import frames, sources


@dataclass(frozen=True)
class Data:
    """The data as read from its source, every column: what the data package publishes."""

    frame: pd.DataFrame
    source: str
    sha256: str  # of the canonical form
    file_sha256: str | None = None  # of the file's bytes, for a source that is one CSV file


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame  # the feature columns and the target, nothing else
    features: tuple[str, ...]
    target: str
    source: str
    sha256: str
    file_sha256: str | None = None  # of the source file's bytes, when it is one CSV file (releases before Parquet)

    @property
    def rows(self) -> int:
        return len(self.frame)


def load_dataset(config: DatasetConfig, data_file: str | Path | None = None) -> Dataset:
    """The configured dataset (or ``data_file``), checked for what training needs."""
    return checked(read_data(config, data_file), config)


def read_data(config: DatasetConfig, data_file: str | Path | None = None) -> Data:
    """The configured source (or ``data_file``) as read, with its fingerprint."""
    source = str(data_file) if data_file else config.source
    frame = sources.read_source(source, "DATA_FILE" if data_file else "[dataset] source")
    path = Path(source) if Path(source).is_absolute() else REPO / source
    single_csv = source != TITANIC_SOURCE and path.is_file() and not frames.is_parquet(path)
    return Data(frame, source, frames.frame_sha256(frame), store.sha256_file(path) if single_csv else None)


def loaded_input(config: DatasetConfig, data_file: str | Path | None = None) -> DataInput:
    """A team loader's rows (``[dataset] source = "<module>:<function>"``), read now and known by their frame's
    sha256: nothing else tells what it returns."""
    read = read_data(config, data_file)
    return DataInput(str(data_file) if data_file else None, read.source, read.sha256, read)


def read_input(data: DataInput, config: DatasetConfig) -> Data:
    """The data a release fingerprinted, read (a team loader's rows were read then); a DataError when its
    files are no longer those it fingerprinted."""
    if data.read is not None:
        return data.read
    read = read_data(config, data.data_file)
    again = fingerprint(config, data.data_file)
    if again is None or again.sha256 != data.sha256:
        raise DataError(f"data {read.source} changed while the release read it; run make release again")
    return dataclasses.replace(read, source=data.source)


def checked(data: Data, config: DatasetConfig) -> Dataset:
    """The feature columns and the target of ``data``, typed for training."""
    return Dataset(_check(data.frame, config, data.source), config.features, config.target, data.source, data.sha256,
                   data.file_sha256)


def _check(frame: pd.DataFrame, config: DatasetConfig, source: str) -> pd.DataFrame:
    wanted = (*config.features, config.target)
    missing = [column for column in wanted if column not in frame.columns]
    if config.target in missing:
        raise DataError(f"{source}: the target column {config.target!r} is missing (columns: {', '.join(map(str, frame.columns))}); "
                        "set [dataset] target in dataset.toml")
    if missing:
        raise DataError(f"{source}: feature columns {', '.join(missing)} are missing; "
                        "add them to the data or change the feature lists in dataset.toml")
    frame = frame.loc[:, list(wanted)]  # copy-on-write: the columns are copied only where they are converted
    if frame[config.target].isna().any():
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
        frame[column] = as_text(frame[column])
    if config.task != REGRESSION:
        frame[config.target] = as_text(frame[config.target].astype(str))
    return frame.reset_index(drop=True)


def as_text(column: pd.Series) -> pd.Series:
    """An object column of the values as text (``str(value)``), missing values NaN: what the models are
    trained on. Each distinct text is one Python object, shared by its rows (through a categorical),
    so 10,000,000 rows of a few labels hold 80 MB of references, not 10,000,000 strings.

    >>> as_text(pd.Series([1.0, None, 2.5])).tolist(), as_text(pd.Series(["a", "b", "a"])).dtype
    (['1.0', nan, '2.5'], dtype('O'))
    """
    categories = column.astype("category")
    labels = [str(label) for label in categories.cat.categories]
    if len(set(labels)) < len(labels):  # values that read the same (1 and "1"): one by one
        return column.map(lambda v: v if pd.isna(v) else str(v)).astype("object")
    return categories.cat.rename_categories(labels).astype("object")


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
