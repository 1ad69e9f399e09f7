"""Where the training data comes from: ``[dataset] source`` (or ``DATA_FILE=``), read into one DataFrame.

- ``"openml-titanic"``: the Titanic passenger list, offline, from the copy inside scikit-learn's wheel;
- a file: Parquet (known by its first bytes, ``PAR1``, whatever its name) or else CSV;
- a folder: its ``*.parquet`` or ``*.csv`` files (one kind), in the order of their names;
- a glob (``"data/2026-*.parquet"``): the files it matches, in the order of their names;
- ``"<module>:<function>"``: the team's loader, a function of a module in the package folder
  (``source = "data:load"`` is ``load()`` of src/<import name>/data.py), called with no
  arguments from the repository's root, returning a pandas DataFrame.

Relative paths are relative to the repository's root. The files of a folder or glob must have
the same columns in the same order and types (a CSV column that is whole numbers in one file and
has decimals or gaps in another is read as decimals); their rows follow each other. Parquet files
are read a column at a time (pipeline/steps/frames.py); CSV files are read whole.
"""

from __future__ import annotations

import contextlib
import gzip
from pathlib import Path

import pandas as pd

from pipeline.config import REPO, TITANIC_SOURCE
from pipeline.errors import DataError
from pipeline.steps import frames
from pipeline.steps.data_input import source_files, titanic_path
from pipeline.steps.team_functions import module_file, one_line, team_function


def read_source(source: str, key: str = "[dataset] source") -> pd.DataFrame:
    """The data ``source`` names, as one DataFrame with a RangeIndex (``key``: where it was given)."""
    if source == TITANIC_SOURCE:
        return _read_titanic()
    files = source_files(source, key)
    return _load(source, key) if files is None else _read_files(files, source)


def _read_files(files: list[Path], source: str) -> pd.DataFrame:
    parquet = [frames.is_parquet(f) for f in files]
    if any(parquet) and not all(parquet):
        other = files[parquet.index(False)]
        raise DataError(f"{source!r} mixes Parquet and CSV files ({files[parquet.index(True)].name}, {other.name}); "
                        "keep one kind of file in a source")
    if all(parquet):
        return frames.normalised(frames.read_parquet(files), source)
    read = [(path, _read_csv(path)) for path in files]
    first_path, first = read[0]
    for path, frame in read[1:]:
        _same_columns(first, frame, first_path, path)
    frame = read[0][1] if len(read) == 1 else pd.concat([f for _, f in read], ignore_index=True)
    return frames.normalised(frame, source)


def _read_csv(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0 or not _has_text(path):
        raise DataError(f"data file {path} is empty; give a CSV with a header row and data rows")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"data file {path} is not a readable CSV ({reason}); give a comma-separated file with a "
                        "header row") from None


def _has_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        return any(block.strip() for block in iter(lambda: handle.read(1 << 16), b""))


def _same_columns(first: pd.DataFrame, other: pd.DataFrame, first_path: Path, path: Path) -> None:
    """The same columns in the same order; whole numbers in one file and decimals in another are both decimals."""
    if list(first.columns) != list(other.columns):
        raise DataError(f"{path} has the columns {', '.join(map(str, other.columns))}, {first_path} has "
                        f"{', '.join(map(str, first.columns))}; give every file of the source the same columns")
    for name in first.columns:
        a, b = first[name].dtype, other[name].dtype
        if a != b and not (a.kind in "iuf" and b.kind in "iuf"):
            raise DataError(f"{path}: the column {name!r} is read as {b}, in {first_path} as {a}; give every file "
                            "of the source the same column types")


def _load(reference: str, key: str) -> pd.DataFrame:
    """The team's loader: ``source = "data:load"`` calls load() of src/<import name>/data.py."""
    module, _, name = reference.partition(":")
    where = f"{key} = {reference!r}"
    function = team_function(reference, where, f"{name}()", DataError)
    try:
        with contextlib.chdir(REPO):  # its relative paths are the repository's, wherever the command runs
            frame = function()
    except Exception as exc:
        raise DataError(f"{where}: {name}() raised {one_line(exc)}; fix the loader in "
                        f"{module_file(None, module)}") from None
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{where}: {name}() returned {type(frame).__name__}, not a pandas DataFrame; return the "
                        "rows as a DataFrame (pandas.read_sql_query gives one)")
    if frame.empty:
        raise DataError(f"{where}: {name}() returned no rows; check what it reads")
    return frames.normalised(frame, reference)


def _read_titanic() -> pd.DataFrame:
    raw = titanic_path().read_bytes()  # not importlib.resources: that imports sklearn.datasets and its every module
    from sklearn.externals import _arff  # scikit-learn's own ARFF reader for its OpenML files

    arff = _arff.load(gzip.decompress(raw).decode("utf-8"))
    return frames.normalised(pd.DataFrame(arff["data"], columns=[name for name, _ in arff["attributes"]]),
                             TITANIC_SOURCE)

