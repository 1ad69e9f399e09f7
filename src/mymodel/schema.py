"""Check input rows against a model's input schema and turn them into columns or a DataFrame.

pandas is imported only to build a DataFrame (``to_frame``): ``to_columns`` needs none, and a
DataFrame passed in is recognised by the pandas its caller already imported.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import SchemaError


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pandas NA/NaT
    except (TypeError, ValueError):
        return False


def _records(rows: Any, columns: list[str]) -> list[Mapping[str, Any]]:
    pd = sys.modules.get("pandas")  # a DataFrame's pandas is already imported: never import it to ask
    if pd is not None and isinstance(rows, pd.DataFrame):
        missing = [c for c in columns if c not in rows.columns]
        extra = [str(c) for c in rows.columns if c not in columns]
        if missing or extra:
            raise SchemaError(_column_message("the DataFrame", missing, extra, columns))
        return rows.loc[:, columns].to_dict(orient="records")
    if isinstance(rows, Mapping):
        rows = [rows]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise SchemaError(f"rows must be a DataFrame, a dict or a list of dicts, not {type(rows).__name__}")
    for position, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise SchemaError(f"row {position} is a {type(row).__name__}, not a dict of column: value")
        missing = [c for c in columns if c not in row]
        extra = [str(c) for c in row if c not in columns]
        if missing or extra:
            raise SchemaError(_column_message(f"row {position}", missing, extra, columns))
    return list(rows)


def _column_message(where: str, missing: list[str], extra: list[str], columns: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected column(s) {', '.join(extra)}")
    return f"{where}: {' and '.join(parts)}; pass exactly the columns {', '.join(columns)}"


def _number(value: Any, column: str, position: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) and not hasattr(value, "__float__"):
        raise SchemaError(f"row {position}, column {column!r}: {value!r} is a {type(value).__name__}, expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SchemaError(f"row {position}, column {column!r}: {value!r} cannot be converted to a number") from None
    if math.isinf(number):
        raise SchemaError(f"row {position}, column {column!r}: {value!r} is infinite; pass a finite number or null")
    return number


def to_columns(rows: Any, schema: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Column name -> checked values (float or NaN for a number, text or None for a category), in the
    schema's order; or a SchemaError naming the row and column."""
    specs = schema["columns"]
    columns = [spec["name"] for spec in specs]
    records = _records(rows, columns)
    if not records:
        raise SchemaError("no rows given; pass at least one row")
    data: dict[str, list[Any]] = {}
    for spec in specs:
        name, values = spec["name"], []
        for position, record in enumerate(records):
            value = record[name]
            if _is_missing(value):
                if not spec.get("allows_missing", True):
                    raise SchemaError(f"row {position}, column {name!r}: a value is required")
                values.append(math.nan if spec["dtype"] == "float64" else None)
            elif spec["dtype"] == "float64":
                values.append(_number(value, name, position))
            elif isinstance(value, str):
                values.append(value)
            else:
                raise SchemaError(f"row {position}, column {name!r}: {value!r} is a {type(value).__name__}, "
                                  f"expected text such as {', '.join(map(repr, spec.get('categories', [])[:3]))}")
        data[name] = values
    return data


def to_frame(rows: Any, schema: Mapping[str, Any]):
    """A DataFrame with the schema's columns and dtypes, or a SchemaError naming the row and column."""
    import pandas as pd

    specs = schema["columns"]
    columns = [spec["name"] for spec in specs]
    frame = pd.DataFrame(to_columns(rows, schema), columns=columns)
    for spec in specs:
        frame[spec["name"]] = frame[spec["name"]].astype("float64" if spec["dtype"] == "float64" else "object")
    return frame
