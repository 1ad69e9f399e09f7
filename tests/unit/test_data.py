from dataclasses import replace

import pandas as pd
import pytest

from pipeline.config import load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.errors import DataError

CONFIG = load_dataset_config()
GOOD_ROWS = [
    {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S", "survived": 1},
    {"pclass": 3, "sex": "male", "age": None, "sibsp": 1, "parch": 0, "fare": 7.25, "embarked": "Q", "survived": 0},
] * 10


def write_csv(tmp_path, rows, name="data.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_titanic_loads_offline_from_the_scikit_learn_wheel():
    dataset = load_dataset(CONFIG)
    assert dataset.rows == 1309
    assert list(dataset.frame.columns) == [*CONFIG.features, "survived"]
    assert set(dataset.frame["survived"]) == {"0", "1"}
    assert "boat" not in dataset.frame.columns and "body" not in dataset.frame.columns  # they leak the target
    assert len(dataset.sha256) == 64
    assert dataset.frame["sex"].dtype == object and dataset.frame["age"].dtype == "float64"


def test_csv_source_loads(tmp_path):
    dataset = load_dataset(CONFIG, write_csv(tmp_path, GOOD_ROWS))
    assert dataset.rows == 20
    assert dataset.frame["age"].isna().sum() == 10


def test_same_data_same_fingerprint(tmp_path):
    first = load_dataset(CONFIG, write_csv(tmp_path, GOOD_ROWS, "a.csv"))
    second = load_dataset(CONFIG, write_csv(tmp_path, GOOD_ROWS, "b.csv"))
    changed = load_dataset(CONFIG, write_csv(tmp_path, GOOD_ROWS[:-1], "c.csv"))
    assert first.sha256 == second.sha256 != changed.sha256


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; check DATA_FILE"):
        load_dataset(CONFIG, tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(CONFIG, tmp_path / "empty.csv")


def test_not_a_csv(tmp_path):
    (tmp_path / "model.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 50)
    with pytest.raises(DataError, match="not a readable CSV|missing"):
        load_dataset(CONFIG, tmp_path / "model.csv")


def test_ragged_csv(tmp_path):
    (tmp_path / "ragged.csv").write_text("a,b\n1,2,3,4\n\"unclosed\n")
    with pytest.raises(DataError, match="not a readable CSV"):
        load_dataset(CONFIG, tmp_path / "ragged.csv")


def test_missing_target_column(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "survived"} for row in GOOD_ROWS]
    with pytest.raises(DataError, match=r"the target column 'survived' is missing"):
        load_dataset(CONFIG, write_csv(tmp_path, rows))


def test_missing_feature_column(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "fare"} for row in GOOD_ROWS]
    with pytest.raises(DataError, match="feature columns fare are missing"):
        load_dataset(CONFIG, write_csv(tmp_path, rows))


def test_target_with_one_class(tmp_path):
    rows = [{**row, "survived": 1} for row in GOOD_ROWS]
    with pytest.raises(DataError, match="has one class"):
        load_dataset(CONFIG, write_csv(tmp_path, rows))


def test_feature_all_missing(tmp_path):
    rows = [{**row, "embarked": None} for row in GOOD_ROWS]
    with pytest.raises(DataError, match="feature column 'embarked' is all missing"):
        load_dataset(CONFIG, write_csv(tmp_path, rows))


def test_text_in_a_numeric_column(tmp_path):
    rows = [dict(row) for row in GOOD_ROWS]
    rows[3]["age"] = "old"
    with pytest.raises(DataError, match=r"numeric column 'age' holds 'old' at row 3"):
        load_dataset(CONFIG, write_csv(tmp_path, rows))


def test_too_few_rows(tmp_path):
    with pytest.raises(DataError, match="only 2 rows"):
        load_dataset(CONFIG, write_csv(tmp_path, GOOD_ROWS[:2]))


def test_target_column_from_config(tmp_path):
    rows = [{**{k: v for k, v in row.items() if k != "survived"}, "label": row["survived"]} for row in GOOD_ROWS]
    dataset = load_dataset(replace(CONFIG, target="label"), write_csv(tmp_path, rows))
    assert dataset.target == "label" and dataset.rows == 20


def test_titanic_missing_from_scikit_learn_says_how_to_use_a_csv(monkeypatch):
    import pipeline.steps.data_input

    monkeypatch.setattr(pipeline.steps.data_input, "TITANIC_PACKAGE", "sklearn.datasets.tests.data.openml.id_0")
    with pytest.raises(DataError, match=r"not in the installed scikit-learn .*DATA_FILE=path/to/titanic.csv"):
        load_dataset(CONFIG)
