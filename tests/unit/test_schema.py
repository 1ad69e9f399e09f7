import math

import pandas as pd
import pytest

from mymodel.errors import SchemaError
from mymodel.schema import to_frame

SCHEMA = {
    "columns": [
        {"name": "age", "dtype": "float64", "allows_missing": True},
        {"name": "fare", "dtype": "float64", "allows_missing": False},
        {"name": "sex", "dtype": "category", "categories": ["female", "male"], "allows_missing": True},
    ],
    "unseen_categories": "ignore",
}
ROW = {"age": 29, "fare": "7.25", "sex": "female"}


def test_dict_list_and_dataframe_give_the_same_frame():
    from_dict = to_frame(ROW, SCHEMA)
    from_list = to_frame([ROW], SCHEMA)
    from_frame = to_frame(pd.DataFrame([{"sex": "female", "fare": 7.25, "age": 29}]), SCHEMA)
    for frame in (from_dict, from_list, from_frame):
        assert list(frame.columns) == ["age", "fare", "sex"]
        assert frame.iloc[0].tolist() == [29.0, 7.25, "female"]
        assert str(frame["age"].dtype) == "float64" and frame["sex"].dtype == object


def test_missing_values_where_allowed():
    frame = to_frame([{**ROW, "age": None, "sex": float("nan")}], SCHEMA)
    assert math.isnan(frame.at[0, "age"]) and frame.at[0, "sex"] is None


def test_unseen_category_passes_to_the_encoder():
    assert to_frame({**ROW, "sex": "unknown"}, SCHEMA).at[0, "sex"] == "unknown"


@pytest.mark.parametrize("rows, message", [
    ([ROW, {"age": 1, "sex": "male"}], r"row 1: missing column\(s\) fare"),
    ([{**ROW, "cabin": "C85"}], r"row 0: unexpected column\(s\) cabin"),
    (pd.DataFrame([{"age": 1}]), r"the DataFrame: missing column\(s\) fare, sex"),
    ([ROW, ROW, {**ROW, "age": "old"}], r"row 2, column 'age': 'old' cannot be converted to a number"),
    ([{**ROW, "age": True}], r"row 0, column 'age': True is a bool, expected a number"),
    ([{**ROW, "age": [1]}], r"row 0, column 'age': \[1\] is a list, expected a number"),
    ([{**ROW, "age": float("inf")}], r"row 0, column 'age': inf is infinite"),
    ([{**ROW, "fare": None}], r"row 0, column 'fare': a value is required"),
    ([{**ROW, "sex": 1}], r"row 0, column 'sex': 1 is a int, expected text such as 'female', 'male'"),
    ([], r"no rows given"),
    ("age,fare", r"rows must be a DataFrame, a dict or a list of dicts, not str"),
    ([["29", "7.25", "female"]], r"row 0 is a list, not a dict"),
])
def test_bad_rows_name_the_row_and_column(rows, message):
    with pytest.raises(SchemaError, match=message):
        to_frame(rows, SCHEMA)
