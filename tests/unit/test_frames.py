"""The canonical form of a frame and its Parquet file (pipeline/steps/frames.py): one sha256 for the same
data whichever file it came from, the same Parquet bytes for the same frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.steps import frames


def every_dtype() -> pd.DataFrame:
    return frames.normalised(pd.DataFrame({
        "whole": [1, 2, 3, 4], "decimal": [1.5, np.nan, -0.0, 2.25], "flag": [True, False, True, True],
        "text": ["a", None, "ü", ""], "objects": pd.Series(["x", None, "y", "x"], dtype=object),
        "kind": pd.Categorical(["x", None, "x", "y"]), "when": pd.to_datetime(["2020-01-01", None, "2021-01-01", "2022-06-30"]),
        "nullable": pd.array([1, None, 3, 4], dtype="Int64"), "nothing": pd.Series([None] * 4, dtype=object),
    }), "test")


def test_a_frame_read_back_from_its_parquet_file_has_its_types_and_sha256(tmp_path):
    frame = every_dtype()
    frames.write_parquet(frame, tmp_path / "data.parquet")
    back = frames.read_parquet([tmp_path / "data.parquet"])
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    assert frames.frame_sha256(back) == frames.frame_sha256(frame)
    assert frames.is_parquet(tmp_path / "data.parquet")


def test_the_same_frame_gives_the_same_parquet_bytes(tmp_path):
    frame = every_dtype()
    frames.write_parquet(frame, tmp_path / "one.parquet")
    frames.write_parquet(frame.copy(), tmp_path / "two.parquet")
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_the_sha256_does_not_depend_on_the_block_of_rows_hashed_at_a_time(monkeypatch):
    frame = pd.concat([every_dtype()] * 5, ignore_index=True)
    whole = frames.frame_sha256(frame)
    monkeypatch.setattr(frames, "BLOCK_ROWS", 3)
    assert frames.frame_sha256(frame) == whole


def test_a_csv_and_a_parquet_file_of_the_same_rows_have_one_sha256(tmp_path):
    frame = pd.DataFrame({"age": [22.0, None, 35.5], "sex": ["male", "female", None], "survived": [0, 1, 1]})
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame.to_parquet(tmp_path / "data.parquet")
    from_csv = frames.normalised(pd.read_csv(tmp_path / "data.csv"), "csv")
    from_parquet = frames.normalised(frames.read_parquet([tmp_path / "data.parquet"]), "parquet")
    assert frames.frame_sha256(from_csv) == frames.frame_sha256(from_parquet)


@pytest.mark.parametrize("change", [
    lambda f: f.assign(decimal=f["decimal"].fillna(0.0)),  # a missing value filled
    lambda f: f.assign(text=f["text"].replace("", "-")),  # "" is a value, not a missing one
    lambda f: f.iloc[::-1],  # row order
    lambda f: f[list(reversed(f.columns))],  # column order
    lambda f: f.assign(whole=f["whole"].astype("float64")),  # the same numbers, another type
    lambda f: f.rename(columns={"whole": "count"}),
    lambda f: f.iloc[:3],
])
def test_any_change_to_the_data_changes_the_sha256(change):
    frame = every_dtype()
    assert frames.frame_sha256(frames.normalised(change(frame), "changed")) != frames.frame_sha256(frame)


def test_the_index_is_not_data():
    frame = every_dtype()
    assert frames.frame_sha256(frames.normalised(frame.set_axis(range(10, 14)), "i")) == frames.frame_sha256(frame)


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"mixed": pd.Series([1, "a", None], dtype=object)}),
     "the column 'mixed' holds values of more than one type (int, str); give it one type"),
    (pd.DataFrame({0: [1, 2]}), "the column name 0 is not text"),
    (pd.DataFrame([[1, 2]], columns=["a", "a"]), "the column 'a' appears more than once"),
])
def test_a_frame_without_one_type_per_column_or_unique_text_names_is_refused(frame, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        frames.normalised(frame, "loader")


def test_parquet_files_of_other_columns_or_types_are_refused_together(tmp_path):
    pd.DataFrame({"a": [1], "b": ["x"]}).to_parquet(tmp_path / "1.parquet")
    pd.DataFrame({"a": [1.5], "b": ["x"]}).to_parquet(tmp_path / "2.parquet")
    pd.DataFrame({"b": ["x"], "a": [1]}).to_parquet(tmp_path / "3.parquet")
    with pytest.raises(DataError, match=r"2.parquet: the column 'a' is double, in .*1.parquet it is int64"):
        frames.read_parquet([tmp_path / "1.parquet", tmp_path / "2.parquet"])
    with pytest.raises(DataError, match=r"3.parquet has the columns b, a, .*1.parquet has a, b"):
        frames.read_parquet([tmp_path / "1.parquet", tmp_path / "3.parquet"])


def test_a_file_that_is_not_parquet_says_so(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"PAR1 but nothing else")
    with pytest.raises(DataError, match="is not a readable Parquet file"):
        frames.read_parquet([tmp_path / "x.parquet"])
    assert not frames.is_parquet(tmp_path / "missing.parquet")
