"""pipeline/cache.py: entries and their files round-trip; a damaged or foreign entry is a miss (never an error,
never another file); a folder that cannot be written fails no run and leaves no temporary file; pruning
keeps the most recently used within the limits."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.cache import ENTRY_LIMIT, FORMAT, ORPHAN_GRACE, Cache, digest

KEY, OTHER = digest({"work": "a"}), digest({"work": "b"})


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


@pytest.fixture
def stored(cache, tmp_path):
    """An entry with a file given by path and one given as bytes."""
    model = tmp_path / "model.joblib"
    model.write_bytes(b"pickle bytes" * 1000)
    assert cache.put("model", KEY, {"metadata": {"name": "M"}}, {"model.joblib": model, "model.onnx": b"onnx bytes"})
    return cache


def entry_path(cache, key=KEY, kind="model"):
    return cache.root / "entries" / kind / f"{key}.json"


def stored_file(cache, name="model.onnx"):
    return cache.get("model", KEY).files[name]


def test_an_entry_round_trips_with_its_files(stored, tmp_path):
    entry = stored.get("model", KEY)
    assert entry.document == {"metadata": {"name": "M"}}
    assert entry.read("model.joblib") == b"pickle bytes" * 1000 and entry.read("model.onnx") == b"onnx bytes"
    assert entry.files["model.onnx"].name == entry.sha256["model.onnx"]  # stored once, by its sha256
    assert stored.get("model", OTHER) is None and stored.get("onnx", KEY) is None
    assert not list(stored.root.rglob(".tmp-*"))


def _garbage(cache):
    entry_path(cache).write_text("{not json")


def _truncated(cache):
    path = entry_path(cache)
    path.write_bytes(path.read_bytes()[:40])


def _other_key(cache):
    """Another key's entry under this key's file name."""
    document = json.loads(entry_path(cache).read_text())
    document["key"] = OTHER
    entry_path(cache).write_text(json.dumps(document))


def _other_format(cache):
    document = json.loads(entry_path(cache).read_text())
    document["format"] = FORMAT + 1
    entry_path(cache).write_text(json.dumps(document))


def _changed_file(cache):
    path = stored_file(cache)
    path.write_bytes(b"onnx bytez")


def _missing_file(cache):
    stored_file(cache, "model.joblib").unlink()


def _symlinked_entry(cache):
    real = entry_path(cache).with_name("real.json.keep")
    os.replace(entry_path(cache), real)
    entry_path(cache).symlink_to(real)


def _symlinked_file(cache):
    path = stored_file(cache)
    copy = path.with_name("copy")
    copy.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(copy)


def _oversized_entry(cache):
    document = json.loads(entry_path(cache).read_text())
    document["document"]["padding"] = "x" * ENTRY_LIMIT
    entry_path(cache).write_text(json.dumps(document))


def _wrong_shape(cache):
    document = json.loads(entry_path(cache).read_text())
    document["files"] = {"model.onnx": "../../etc/passwd"}
    entry_path(cache).write_text(json.dumps(document))


DAMAGE = [_garbage, _truncated, _other_key, _other_format, _changed_file, _missing_file, _symlinked_entry,
          _symlinked_file, _oversized_entry, _wrong_shape]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda damage: damage.__name__.strip("_"))
def test_a_damaged_entry_is_a_miss_and_the_next_put_repairs_it(stored, damage):
    damage(stored)
    assert stored.get("model", KEY) is None
    assert stored.put("model", KEY, {"metadata": {"name": "M"}}, {"model.onnx": b"onnx bytes",
                                                                   "model.joblib": b"pickle bytes" * 1000})
    assert stored.get("model", KEY).read("model.onnx") == b"onnx bytes"


@pytest.mark.parametrize("what", ["entry", "file"])
def test_an_entry_or_file_of_another_user_is_a_miss(stored, what):
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(entry_path(stored) if what == "entry" else stored_file(stored), 65534, 65534)
    assert stored.get("model", KEY) is None


def test_a_cache_that_cannot_be_written_fails_nothing(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    cache = Cache(tmp_path / "a-file" / "cache")
    assert not cache.put("model", KEY, {"metadata": {}}, {"model.onnx": b"x"})
    assert "a-file" in cache.write_problem and cache.get("model", KEY) is None
    cache.prune()  # nothing to do, and no error


def test_a_full_disk_leaves_no_entry_and_no_temporary_file(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", disk], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        cache = Cache(disk / "cache")
        assert not cache.put("model", KEY, {"metadata": {}}, {"model.joblib": os.urandom(200_000)})
        assert "No space left on device" in cache.write_problem
        assert cache.get("model", KEY) is None
        assert [p for p in (disk / "cache").rglob("*") if p.is_file()] == []
    finally:
        subprocess.run(["umount", disk], check=True)


def _age(path, seconds):
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_prune_keeps_the_most_recently_used_entries_within_the_limits(tmp_path):
    cache = Cache(tmp_path / "cache", max_entries=2, max_bytes=10_000)
    keys = [digest(i) for i in range(4)]
    for age, key in zip((40, 30, 20, 10), keys):
        cache.put("model", key, {}, {"f": key.encode() * 10})  # 640 bytes each, a file of its own
        _age(entry_path(cache, key), age)
    cache.get("model", keys[0])  # used now: the most recent
    cache.put("onnx", keys[0], {}, {"f": keys[0].encode() * 10})  # another kind counts apart, its file shared
    cache.prune()
    assert [key for key in keys if cache.get("model", key)] == [keys[0], keys[3]]
    assert cache.get("onnx", keys[0]) is not None
    for key in keys[1:3]:  # their files go once nothing names them and the grace period is over
        assert (cache.root / "files" / digest_of(key)).exists()
        _age(cache.root / "files" / digest_of(key), ORPHAN_GRACE + 1)
    cache.prune()
    assert sorted(p.name for p in (cache.root / "files").iterdir()) == sorted(digest_of(k) for k in (keys[0], keys[3]))


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode() * 10).hexdigest()


def test_prune_keeps_the_stored_files_within_the_byte_limit(tmp_path):
    cache = Cache(tmp_path / "cache", max_bytes=1_500)
    for age, key in zip((30, 20, 10), (KEY, OTHER, digest("c"))):
        cache.put("model", key, {}, {"f": key.encode() * 10})
        _age(entry_path(cache, key), age)
    cache.prune()
    assert [cache.get("model", key) is not None for key in (KEY, OTHER, digest("c"))] == [False, True, True]


def test_the_installed_distributions_modules_are_read_once_per_environment(tmp_path, monkeypatch):
    """requirements._provided (every distribution's files read: 0.2 s) is kept by the installed names and versions."""
    from pipeline.cache import environment
    from pipeline.steps import requirements

    monkeypatch.setenv("RELEASE_CACHE", str(tmp_path / "cache"))
    requirements._provided.cache_clear()
    try:
        provided = requirements._provided()
        assert "sklearn" in provided
        key = digest({"work": requirements.PROVIDED_KIND, "environment": environment()})
        cache = Cache(tmp_path / "cache")
        assert cache.get(requirements.PROVIDED_KIND, key).document == {"provided": provided}
        cache.put(requirements.PROVIDED_KIND, key, {"provided": {"sklearn": ["kept-by-an-earlier-run"]}})
        requirements._provided.cache_clear()
        assert requirements._provided() == {"sklearn": ["kept-by-an-earlier-run"]}
        cache.put(requirements.PROVIDED_KIND, key, {"provided": {"sklearn": "not a list"}})
        requirements._provided.cache_clear()
        assert requirements._provided() == provided  # a malformed entry is read again from the distributions
    finally:
        requirements._provided.cache_clear()


def test_held_files_outlive_their_removal_from_the_cache_and_a_symlink_is_not_held(stored, tmp_path):
    with stored.held() as folder:
        entry = stored.get("model", KEY, hold_in=Path(folder))
        assert all(Path(folder) in path.parents for path in entry.files.values())
        shutil.rmtree(stored.root / "files")
        assert entry.read("model.onnx") == b"onnx bytes" and entry.read("model.joblib") == b"pickle bytes" * 1000
    assert not Path(folder).exists()
    stored.put("model", KEY, {"metadata": {"name": "M"}}, {"model.onnx": b"onnx bytes", "model.joblib": b"p"})
    _symlinked_file(stored)
    with stored.held() as folder:
        assert stored.get("model", KEY, hold_in=Path(folder)) is None
