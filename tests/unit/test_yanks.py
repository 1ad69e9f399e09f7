"""The yank record: what one process writes, a restarted (or another) process reads."""

import json

import pytest

from index.yanks import YANKS_FILE, DamagedYankFile, YankStore


def test_a_yank_is_recorded_atomically_and_read_by_a_new_store(tmp_path):
    path = tmp_path / YANKS_FILE
    store = YankStore(path)
    assert store.reasons("mymodel") == {}
    store.set("MyModel", "1.1.2+Titanic", "bad <model>")
    store.set("mymodel", "1.1.1+titanic", "")
    assert YankStore(path).reasons("mymodel") == {"1.1.2+titanic": "bad <model>", "1.1.1+titanic": ""}
    assert [p.name for p in tmp_path.iterdir()] == [YANKS_FILE]  # no temporary file left
    store.set("mymodel", "1.1.2+titanic", None)
    store.set("mymodel", "1.1.1+titanic", None)
    assert json.loads(path.read_text()) == {}


def test_a_store_sees_a_yank_written_by_another_process(tmp_path):
    reader, writer = YankStore(tmp_path / YANKS_FILE), YankStore(tmp_path / YANKS_FILE)
    assert reader.reasons("mymodel") == {}
    writer.set("mymodel", "2.0.0", "broken")
    assert reader.reasons("mymodel") == {"2.0.0": "broken"}


def test_a_damaged_file_keeps_the_last_yanks_and_refuses_new_ones(tmp_path, caplog):
    path = tmp_path / YANKS_FILE
    store = YankStore(path)
    store.set("mymodel", "2.0.0", "broken")
    path.write_text('{"mymodel": {"2.0.0": "bro')  # cut short
    assert store.reasons("mymodel") == {"2.0.0": "broken"}
    assert "is damaged" in caplog.text
    with pytest.raises(DamagedYankFile, match="restore it or delete it"):
        store.set("mymodel", "2.0.1", "also broken")
    assert path.read_text() == '{"mymodel": {"2.0.0": "bro'


def test_a_yank_without_a_reason_keeps_the_recorded_one_and_a_new_reason_replaces_it(tmp_path):
    store = YankStore(tmp_path / YANKS_FILE)
    assert store.yank_keeping_reason("mymodel", "2.0.0") is None  # a first yank, without a reason
    assert store.reasons("mymodel") == {"2.0.0": ""}
    assert store.set("mymodel", "2.0.0", "broken") == ""
    assert store.yank_keeping_reason("MyModel", "2.0.0") == "broken"
    assert YankStore(tmp_path / YANKS_FILE).reasons("mymodel") == {"2.0.0": "broken"}
    assert store.set("mymodel", "2.0.0", "worse") == "broken"
    assert store.set("mymodel", "2.0.0", None) == "worse"
    assert store.reasons("mymodel") == {}
