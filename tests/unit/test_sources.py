"""[dataset] source (pipeline/steps/sources.py): a Parquet or CSV file, a folder or glob of them, the
team's loader; each bad source stops with one line that says what to do."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.steps import frames, sources

ROWS = pd.DataFrame({"age": [22.0, None, 35.0, 54.0], "sex": ["male", "female", "female", None],
                     "survived": [0, 1, 1, 0]})


def sha256(frame: pd.DataFrame) -> str:
    return frames.frame_sha256(frames.normalised(frame, "test"))


@pytest.fixture
def package(team_package):
    return team_package.write


def test_a_parquet_file_is_known_by_its_bytes_whatever_its_name(tmp_path):
    ROWS.to_parquet(tmp_path / "export.bin")
    frame = sources.read_source(str(tmp_path / "export.bin"))
    assert frames.frame_sha256(frame) == sha256(ROWS) and frame["sex"].dtype == "str"


def test_a_folder_of_csv_files_is_read_in_the_order_of_their_names(tmp_path):
    (tmp_path / "parts").mkdir()
    ROWS.iloc[2:].to_csv(tmp_path / "parts/2026-02.csv", index=False)
    ROWS.iloc[:2].to_csv(tmp_path / "parts/2026-01.csv", index=False)
    (tmp_path / "parts/README.md").write_text("not data")
    frame = sources.read_source(str(tmp_path / "parts"))
    # age: whole numbers in one file, a gap in the other: decimals in both
    assert frames.frame_sha256(frame) == sha256(ROWS) and list(frame["survived"]) == [0, 1, 1, 0]


def test_a_glob_of_parquet_files_is_read_in_the_order_of_their_names(tmp_path):
    for number, start in enumerate((0, 1, 3)):
        ROWS.iloc[start:start + (1 if number == 0 else 2)].to_parquet(tmp_path / f"part-{number}.parquet")
    assert frames.frame_sha256(sources.read_source(str(tmp_path / "part-*.parquet"))) == sha256(ROWS)


def test_the_team_loader_reads_sqlite_with_the_standard_library(tmp_path, package):
    database = tmp_path / "titanic.sqlite"
    with sqlite3.connect(database) as connection:
        ROWS.to_sql("passengers", connection, index=False)
    package("data", f"""
        import sqlite3
        import pandas as pd

        def load():
            with sqlite3.connect({str(database)!r}) as connection:
                return pd.read_sql_query("SELECT age, sex, survived FROM passengers ORDER BY rowid", connection)
        """)
    assert frames.frame_sha256(sources.read_source("data:load")) == sha256(ROWS)


@pytest.mark.parametrize("code, message", [
    ("def load():\n    raise ConnectionError('no route to db.internal')\n",
     "load() raised ConnectionError: no route to db.internal; fix the loader in"),
    ("def load():\n    return [1, 2]\n", "load() returned list, not a pandas DataFrame; return the rows as a DataFrame"),
    ("import pandas as pd\ndef load():\n    return pd.DataFrame({'a': []})\n", "load() returned no rows"),
    ("def lode():\n    pass\n", "has no function load; did you mean data:lode? define def load() there"),
    ("import not_installed_anywhere\n", "cannot be imported (ModuleNotFoundError: No module named 'not_installed_anywhere')"),
])
def test_a_loader_that_fails_says_why_in_one_line(package, code, message):
    package("data", code)
    with pytest.raises(DataError) as refused:
        sources.read_source("data:load")
    assert message in str(refused.value) and "[dataset] source = 'data:load'" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_loader_module_that_is_not_there_is_named(package):
    with pytest.raises(DataError, match=r"\[dataset\] source = 'nowhere:load': there is no module .*nowhere.py"):
        sources.read_source("nowhere:load")


@pytest.mark.parametrize("setup, source, message", [
    (lambda d: None, "missing.parquet", "data file {d}/missing.parquet does not exist; check DATA_FILE or [dataset] source"),
    (lambda d: None, "*.parquet", "[dataset] source = '{d}/*.parquet' matches no file; check the pattern"),
    (lambda d: (d / "empty").mkdir(), "empty", "data folder {d}/empty holds no .parquet or .csv file"),
    (lambda d: (ROWS.to_csv(d / "a.csv", index=False), ROWS.to_parquet(d / "b.parquet")), "*.*",
     "mixes Parquet and CSV files (b.parquet, a.csv); keep one kind of file in a source"),
    (lambda d: (ROWS.to_csv(d / "a.csv", index=False), ROWS[["sex", "age", "survived"]].to_csv(d / "b.csv", index=False)),
     "*.csv", "{d}/b.csv has the columns sex, age, survived, {d}/a.csv has age, sex, survived; give every file"),
    (lambda d: (ROWS.to_csv(d / "a.csv", index=False), ROWS.assign(age="old").to_csv(d / "b.csv", index=False)),
     "*.csv", "{d}/b.csv: the column 'age' is read as str, in {d}/a.csv as float64; give every file"),
    (lambda d: (d / "blank.csv").write_text("\n\n"), "blank.csv", "data file {d}/blank.csv is empty"),
])
def test_a_bad_source_is_one_line_naming_it(tmp_path, setup, source, message):
    setup(tmp_path)
    with pytest.raises(DataError) as refused:
        sources.read_source(str(tmp_path / source))
    assert message.format(d=tmp_path) in str(refused.value)


def test_a_release_knows_a_folder_or_glob_by_its_files_bytes_before_reading_it(tmp_path, package):
    """The release cache's key (pipeline/steps/data_input.py): every file of the source, in order; a file
    changed after that is refused when the data is read."""
    from dataclasses import replace

    from pipeline.config import load_dataset_config
    from pipeline.steps.data import loaded_input, read_input
    from pipeline.steps.data_input import fingerprint

    config = replace(load_dataset_config(), target="survived", numeric_features=("age",), categorical_features=("sex",))
    (tmp_path / "parts").mkdir()
    ROWS.iloc[:2].to_csv(tmp_path / "parts/2026-01.csv", index=False)
    ROWS.iloc[2:].to_csv(tmp_path / "parts/2026-02.csv", index=False)
    folder = fingerprint(config, tmp_path / "parts")
    assert folder.read is None and folder.sha256 == fingerprint(config, tmp_path / "parts/2026-0?.csv").sha256
    (tmp_path / "parts/2026-02.csv").write_text("age,sex,survived\n40,male,1\n")
    assert fingerprint(config, tmp_path / "parts").sha256 != folder.sha256
    with pytest.raises(DataError, match="changed while the release read it; run make release again"):
        read_input(folder, config)
    package("data", "import pandas as pd\ndef load():\n    return pd.DataFrame({'age': [1.0, 2.0], 'sex': ['a', 'b'], "
                    "'survived': [0, 1]})\n")
    loader = replace(config, source="data:load")
    assert fingerprint(loader) is None  # its rows are known only once read
    known = loaded_input(loader)
    assert known.read is not None and known.sha256 == known.read.sha256 and read_input(known, loader) is known.read
