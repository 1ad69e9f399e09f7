"""The training data as a frame: its canonical sha256, and its Parquet file, both a block of rows at a time.

Whatever the source (a CSV or Parquet file, a folder or glob of them, the team's loader, the
built-in Titanic copy), the data is one pandas DataFrame, identified by the sha256 of one
canonical byte form (``frame_sha256``), which a frame read back from the data package's
Parquet file has too. The canonical form, version 1, is the sha256 of:

1. ``canonical-frame-v1\\n``, then the JSON ``{"columns": [[name, dtype], ...], "rows": n}``
   (sorted keys, no spaces) and ``\\n``: the columns in their order, each with its pandas dtype
   as ``str(dtype)`` gives it (``int64``, ``float64``, ``str``, ``category``, ``datetime64[ns]``);
2. then, for each column in order, the 32-byte sha256 of each of its streams:

   - missing: one byte per row, 1 where the value is missing (NaN, None, NaT), else 0;
   - a number, boolean, date or duration column: one stream, each row's value in the
     little-endian bytes of its dtype's width (booleans one byte, dates and durations as int64
     nanoseconds since the epoch, in UTC), a missing value as zero bytes;
   - any other column (text, category, object): two streams, each row's ``str(value)`` in UTF-8:
     first every value's byte length as int64 little-endian (0 when missing), then the bytes of
     the values one after another.

Rows are in the order they were read; the index is not part of the data. Each stream is
hashed as it is produced, BLOCK_ROWS rows at a time, so no second copy of the frame is made.

Object columns that hold text only become pandas' ``str`` dtype first (``normalised``): that is
what a Parquet file gives back. An object column whose values have more than one type (``1``
and ``"a"``) has no typed form and is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import DataError

FORM = b"canonical-frame-v1\n"
BLOCK_ROWS = 1 << 18  # rows hashed or converted at a time: bounds each step's extra memory
PARQUET_ROW_GROUP = 1 << 18  # fixed: the same frame gives the same Parquet bytes
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 3
PARQUET_MAGIC = b"PAR1"


def normalised(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` with a RangeIndex and text-only object columns as ``str``; a DataError for
    column names that are not unique text, or an object column of mixed types."""
    names = list(frame.columns)
    if not all(isinstance(name, str) for name in names):
        odd = next(name for name in names if not isinstance(name, str))
        raise DataError(f"{source}: the column name {odd!r} is not text; name every column with a string")
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise DataError(f"{source}: the column {twice!r} appears more than once; give every column its own name")
    frame = frame.reset_index(drop=True)
    for name in names:
        column = frame[name]
        if column.dtype != object:
            continue
        kind = pd.api.types.infer_dtype(column, skipna=True)
        if kind == "string":
            frame[name] = column.astype("str")
        elif kind not in ("empty", "boolean", "integer", "floating", "decimal", "datetime", "date", "bytes"):
            types = sorted({type(v).__name__ for v in column.dropna().head(10_000)})
            raise DataError(f"{source}: the column {name!r} holds values of more than one type "
                            f"({', '.join(types)}); give it one type (in a loader: frame[{name!r}].astype(str))")
    return frame


def columns(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Each column's name and pandas dtype, as the data package records them."""
    return [{"name": str(name), "type": str(dtype)} for name, dtype in frame.dtypes.items()]


def frame_sha256(frame: pd.DataFrame) -> str:
    """The sha256 of the canonical form of ``frame`` (see the module's docstring)."""
    header = {"columns": [[c["name"], c["type"]] for c in columns(frame)], "rows": len(frame)}
    digest = hashlib.sha256(FORM + json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    for name in frame.columns:
        for stream in _column_digests(frame[name]):
            digest.update(stream)
    return digest.hexdigest()


def _column_digests(column: pd.Series) -> list[bytes]:
    fixed = _fixed_width(column.dtype)
    streams = [hashlib.sha256() for _ in range(2 if fixed else 3)]
    for start in range(0, len(column), BLOCK_ROWS):
        part = column.iloc[start:start + BLOCK_ROWS]
        missing = part.isna().to_numpy(dtype=bool)
        streams[0].update(missing.astype(np.uint8).tobytes())
        if fixed:
            streams[1].update(_fixed_bytes(part, missing, fixed))
        else:
            lengths, data = _text_bytes(part, missing)
            streams[1].update(lengths)
            streams[2].update(data)
    return [stream.digest() for stream in streams]


def _fixed_width(dtype) -> str | None:
    """The little-endian numpy type a column's values are hashed as; None for text."""
    if isinstance(dtype, pd.DatetimeTZDtype) or dtype.kind in "mM":
        return "<i8"
    if dtype.kind in "biuf":
        numpy_type = np.dtype(getattr(dtype, "numpy_dtype", dtype))
        return "<u1" if numpy_type.kind == "b" else numpy_type.newbyteorder("<").str
    return None


def _fixed_bytes(part: pd.Series, missing: np.ndarray, as_type: str) -> bytes:
    if isinstance(part.dtype, pd.DatetimeTZDtype):
        part = part.dt.tz_convert("UTC").dt.tz_localize(None)
    if part.dtype.kind in "mM":
        values = part.to_numpy().astype(f"{part.dtype.kind}8[ns]").view("int64").copy()
    else:
        values = part.to_numpy(dtype=np.dtype(as_type).newbyteorder("="), na_value=0).copy()
    values[missing] = 0
    return values.astype(as_type, copy=False).tobytes()


def _text_bytes(part: pd.Series, missing: np.ndarray) -> tuple[bytes, memoryview]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(part.dtype, pd.CategoricalDtype):
        labels = pa.array([str(label) for label in part.cat.categories], type=pa.large_string())
        codes = part.cat.codes.to_numpy()
        text = pc.take(labels, pa.array(np.where(codes < 0, 0, codes), mask=codes < 0))
    else:
        try:
            text = pa.array(part, type=pa.large_string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            values = part.to_numpy(dtype=object)
            text = pa.array([None if gone else str(v) for v, gone in zip(values, missing)], type=pa.large_string())
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = pc.if_else(pa.array(missing), "", text) if missing.any() else text  # a null's bytes are unspecified
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype="<i8")[text.offset:text.offset + len(text) + 1]
    data = memoryview(data_buffer)[offsets[0]:offsets[-1]] if data_buffer is not None and len(text) else memoryview(b"")
    return np.diff(offsets).astype("<i8").tobytes(), data


# --- Parquet -----------------------------------------------------------------------------------------------------

def is_parquet(path: Path) -> bool:
    """A Parquet file starts with PAR1 (whatever its name)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as a Parquet file, converted a row group at a time; fixed writer settings (row group
    size, compression and level, statistics, no index), so the same frame with the same pandas and
    pyarrow versions gives the same bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(frame)
    with pq.ParquetWriter(path, schema, compression=PARQUET_COMPRESSION, compression_level=PARQUET_COMPRESSION_LEVEL,
                          write_statistics=True, use_dictionary=True, version="2.6") as writer:
        for start in range(0, max(len(frame), 1), PARQUET_ROW_GROUP):
            part = frame.iloc[start:start + PARQUET_ROW_GROUP]
            writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False),
                               row_group_size=PARQUET_ROW_GROUP)


def _schema(frame: pd.DataFrame):
    """The Arrow schema of the whole frame (pandas' metadata included: dtypes come back as they were).
    Each column's type is inferred from that column alone, so a column that is all missing in its
    first rows still gets its type."""
    import pyarrow as pa

    fields = []
    for name in frame.columns:
        column = frame[name]
        try:
            kind = pa.Schema.from_pandas(column.to_frame(), preserve_index=False).field(name).type
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"the column {name!r} cannot be stored as Parquet ({_first_line(exc)}); "
                            "give it one type") from None
        fields.append(pa.field(name, kind))
    empty = pa.Schema.from_pandas(frame.iloc[:0], preserve_index=False)  # pandas' metadata: names and dtypes
    return pa.schema(fields, metadata=empty.metadata)


def read_parquet(paths: list[Path]) -> pd.DataFrame:
    """The rows of ``paths`` (Parquet files of one schema), in order, as a DataFrame read a column at a
    time: at most one column is held twice (as Arrow, then as pandas), never the whole frame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = []
    for path in paths:
        try:
            files.append(pq.ParquetFile(path))
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path} is not a readable Parquet file ({_first_line(exc)}); give a Parquet file "
                            "written by pandas, pyarrow, Spark or DuckDB") from None
    schema = files[0].schema_arrow
    for path, file in zip(paths[1:], files[1:]):
        _same_schema(schema, file.schema_arrow, paths[0], path)
    converted = {}
    for name in schema.names:
        try:
            parts = [file.read(columns=[name]) for file in files]
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"the column {name!r} of {paths[0] if len(paths) == 1 else 'the Parquet files'} cannot be "
                            f"read ({_first_line(exc)}); check the files") from None
        one = (pa.concat_tables(parts) if len(parts) > 1 else parts[0]).replace_schema_metadata(schema.metadata)
        del parts
        converted[name] = one.to_pandas(split_blocks=True, self_destruct=True)[name]
        del one
    return pd.DataFrame(converted, copy=False)


def _same_schema(first, other, first_path: Path, path: Path) -> None:
    if first.names != other.names:
        raise DataError(f"{path} has the columns {', '.join(other.names)}, {first_path} has "
                        f"{', '.join(first.names)}; give every file of the source the same columns")
    for field in first:
        kind = other.field(field.name).type
        if kind != field.type:
            raise DataError(f"{path}: the column {field.name!r} is {kind}, in {first_path} it is {field.type}; "
                            "give every file of the source the same column types")


def _first_line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return text if len(text) <= 200 else text[:200] + "…"
