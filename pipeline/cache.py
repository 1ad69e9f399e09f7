"""Work a release keeps, keyed on the sha256 of everything that decides its result (as ccache and Bazel do).

One cache for every kind of deterministic work: a model's training and ONNX conversion
(pipeline/steps/train_cache.py, onnx_export.py), its evaluation numbers (evaluation.py) and
the figures drawn from them (figures.py). A key is the sha256 of a canonical JSON document
naming every input of the work (a model's pickle, the data's bytes, the settings, the
libraries' versions, the pipeline's code); an entry is what that work produced: a JSON document and files, the files stored once by their
own sha256. The folder (``.cache/release/``, gitignored; ``RELEASE_CACHE=`` moves it, ``off``
turns it off) is local state this clone made and trusts. Nothing is trusted blindly: an entry
that is not a regular file of this user, does not parse, names another key or format, or
whose files are missing or do not hash to their names is a miss, never an error, and never
a wrong file. Entries and files are written to a temporary name and renamed into place;
a write that fails (disk full, read-only checkout) leaves no entry and does not fail the run.
The least recently used entries go when there are more than ``max_entries`` of a kind or
their files take more than ``max_bytes``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import platform
import re
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from pipeline.config import (
    PACKAGE_DIR, RELEASE_CACHE_BYTES, RELEASE_CACHE_ENTRIES, REPO, VERSION_FILE, release_cache_dir,
)

FORMAT = 1  # of the entries; another format is a miss
ENTRY_LIMIT = 1 << 20  # the most read of an entry's JSON
ORPHAN_GRACE = 3600.0  # seconds a file nothing names is kept (a run may be writing the entry that names it)
HEX = re.compile(r"[0-9a-f]{64}")
HELD = "held"  # the runs' hard links to the files they use


def digest(parts: Any) -> str:
    """The key of a document of inputs: sha256 of its canonical JSON (sorted keys; bytes by their sha256,
    anything else JSON cannot hold by its repr).

    >>> digest({"b": 1, "a": [1.5, "x"]}) == digest({"a": [1.5, "x"], "b": 1})
    True
    >>> digest([b"pickle"]) == digest([b"pickle"]) != digest([b"pickles"])
    True
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_key_part, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _key_part(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return hashlib.sha256(value).hexdigest()
    return repr(value)


def sources_digest(*patterns: str) -> str:
    """sha256 over the path and bytes of the .py files the glob ``patterns`` (relative to the repository)
    match, but the version record every release rewrites: the code a result came from."""
    paths = sorted({path for pattern in patterns for path in REPO.glob(pattern)
                    if path.is_file() and path.suffix == ".py" and "__pycache__" not in path.parts and path != VERSION_FILE})
    hashed = hashlib.sha256()
    for path in paths:
        hashed.update(f"{path.relative_to(REPO)}\0".encode())
        hashed.update(hashlib.sha256(path.read_bytes()).digest())
    return hashed.hexdigest()


@functools.cache
def environment() -> str:
    """Python's version and every installed distribution's name and version, from the dist-info
    folders on sys.path (listed, not read: reading every METADATA takes a second)."""
    found = []
    for folder in dict.fromkeys(sys.path):
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        found += [(folder, name) for name in names if name.endswith((".dist-info", ".egg-info", ".egg-link", ".pth"))]
    return digest({"python": sys.version, "machine": platform.machine(), "distributions": sorted(found)})


@functools.cache
def code(*patterns: str) -> str:
    """The code of ``patterns`` (default: all of pipeline/) and of the package (the team's modules included)."""
    package = PACKAGE_DIR.relative_to(REPO)
    return sources_digest(*(patterns or ("pipeline/**/*.py",)), f"{package}/**/*.py")


def open_release_cache() -> Cache | None:
    """The release's cache (RELEASE_CACHE), None when it is off."""
    folder = release_cache_dir()
    return Cache(folder, RELEASE_CACHE_ENTRIES, RELEASE_CACHE_BYTES) if folder else None


class _Sha256Writer:
    def __init__(self) -> None:
        self.hashed = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hashed.update(data)
        return len(data)


def pickle_sha256(pipeline: Any) -> str:
    """sha256 of the fitted pipeline's pickle (streamed, never held): a fresh fit pickles to the same bytes
    in every run (make verify relies on it), so the same pickle is the same model."""
    writer = _Sha256Writer()
    pickle.dump(pipeline, writer, protocol=5)
    return writer.hashed.hexdigest()


def rows_sha256(X: Any) -> str:
    """sha256 of the rows the check runs on: their columns, types, index and values."""
    import pandas as pd

    hashed = hashlib.sha256(repr([(str(c), str(t)) for c, t in X.dtypes.items()]).encode())
    hashed.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    return hashed.hexdigest()


def recall(kind: str, key: str) -> Entry | None:
    """The release cache's entry of ``key``; None on a miss or with the cache off."""
    cache = open_release_cache()
    return cache.get(kind, key) if cache else None


def keep(kind: str, key: str, document: dict, files: dict[str, Path | bytes] | None = None) -> None:
    """Store a result under ``key`` in the release cache; best effort: a cache that cannot be written (or is
    off) costs the work again next time, never the run."""
    cache = open_release_cache()
    if cache:
        cache.put(kind, key, document, files)


@dataclass(frozen=True)
class Entry:
    """A hit: the document stored under the key, and each stored file's path (checked against its sha256)."""

    document: dict
    files: dict[str, Path]  # name -> the stored file; copy it, never edit it
    sha256: dict[str, str]  # name -> its sha256

    def read(self, name: str) -> bytes:
        return self.files[name].read_bytes()


class Cache:
    """A folder of entries (``entries/<kind>/<key>.json``) and the files they name (``files/<sha256>``)."""

    def __init__(self, root: Path, max_entries: int = 500, max_bytes: int = 1 << 30) -> None:
        self.root, self.max_entries, self.max_bytes = root, max_entries, max_bytes
        self.write_problem: str | None = None  # why the last write left no entry (None: it did not fail)

    def get(self, kind: str, key: str, hold_in: Path | None = None) -> Entry | None:
        """The entry of ``key``, or None (absent, damaged, foreign or unreadable: a miss). With ``hold_in``
        (a folder of ``held()``), its files are hard links there, checked there: another run's pruning
        or a removed cache cannot take them away before they are used."""
        path = self._entry_path(kind, key)
        try:
            document = json.loads(_read_own(path, ENTRY_LIMIT))
            if not (isinstance(document, dict) and document.get("format") == FORMAT and document.get("kind") == kind
                    and document.get("key") == key and isinstance(document.get("document"), dict)
                    and isinstance(document.get("files"), dict)):
                return None
            files, hashes = {}, {}
            for name, sha256 in document["files"].items():
                if not (isinstance(name, str) and isinstance(sha256, str) and HEX.fullmatch(sha256)):
                    return None
                stored = self._file_path(sha256)
                if hold_in is not None:
                    stored = _held(stored, hold_in / sha256)
                if _own_file_digest(stored) != sha256:
                    return None
                files[name], hashes[name] = stored, sha256
        except (OSError, ValueError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # used: the last to go (a cache this run cannot write is still read)
        return Entry(document["document"], files, hashes)

    def put(self, kind: str, key: str, document: dict, files: dict[str, Path | bytes] | None = None) -> bool:
        """Store ``document`` and ``files`` (name -> a file to copy, or bytes) under ``key``; False (and
        ``write_problem`` set) when the folder cannot be written."""
        try:
            hashes = {name: self._store_file(content) for name, content in (files or {}).items()}
            entry = {"format": FORMAT, "kind": kind, "key": key, "document": document, "files": hashes}
            path = self._entry_path(kind, key)
            text = (json.dumps(entry, ensure_ascii=True) + "\n").encode()
            _write_atomically(path, lambda out: out.write(text))
        except (OSError, TypeError, ValueError) as exc:
            self.write_problem = f"{getattr(exc, 'strerror', None) or exc}: {getattr(exc, 'filename', None) or self.root}"
            return False
        return True

    def held(self) -> tempfile.TemporaryDirectory:
        """A folder of this run for ``get(hold_in=)``, inside the cache (hard links stay on its file system)."""
        (self.root / HELD).mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=self.root / HELD, prefix=f"{os.getpid()}-")

    def prune(self) -> None:
        """Drop the least recently used entries beyond the limits, then files no entry names."""
        try:
            entries = []
            for path in (self.root / "entries").glob("*/*.json"):
                try:
                    mtime = path.lstat().st_mtime
                    named = json.loads(_read_own(path, ENTRY_LIMIT)).get("files", {})
                except (OSError, ValueError, AttributeError):
                    path.unlink(missing_ok=True)
                    continue
                entries.append((mtime, path, set(named.values()) if isinstance(named, dict) else set()))
            entries.sort(key=lambda item: item[0], reverse=True)
            kept: set[str] = set()
            per_kind: dict[str, int] = {}
            size = 0
            for _, path, named in entries:
                kind = path.parent.name
                added = sum(_size(self._file_path(sha256)) for sha256 in named - kept)
                if per_kind.get(kind, 0) >= self.max_entries or size + added > self.max_bytes:
                    path.unlink(missing_ok=True)
                    continue
                per_kind[kind] = per_kind.get(kind, 0) + 1
                size += added
                kept |= named
            now = time.time()
            for stored in (self.root / "files").glob("*"):
                if stored.name not in kept and now - stored.lstat().st_mtime > ORPHAN_GRACE:
                    stored.unlink(missing_ok=True)
            for folder in (self.root / HELD).glob("*"):  # a run that was killed before it removed its own
                if now - folder.lstat().st_mtime > ORPHAN_GRACE:
                    shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # pruning is housekeeping: the next run tries again

    def _store_file(self, content: Path | bytes) -> str:
        if isinstance(content, bytes):
            sha256 = hashlib.sha256(content).hexdigest()
            if _own_file_digest(self._file_path(sha256)) != sha256:
                _write_atomically(self._file_path(sha256), lambda out: out.write(content))
            return sha256
        with open(content, "rb") as handle:
            sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
        target = self._file_path(sha256)
        if _own_file_digest(target) != sha256:
            with open(content, "rb") as handle:
                _write_atomically(target, lambda out: shutil.copyfileobj(handle, out, 1 << 20))
        return sha256

    def _entry_path(self, kind: str, key: str) -> Path:
        if not (HEX.fullmatch(key) and re.fullmatch(r"[a-z][a-z0-9-]*", kind)):
            raise ValueError(f"not a cache key: {kind}/{key}")
        return self.root / "entries" / kind / f"{key}.json"

    def _file_path(self, sha256: str) -> Path:
        return self.root / "files" / sha256


def _read_own(path: Path, limit: int) -> bytes:
    """The bytes of a regular file this user owns (no symlink), at most ``limit`` of them; OSError otherwise."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_size > limit:
            raise OSError(f"{path} is not a cache file of this user")
        return handle.read(limit + 1)


def _held(stored: Path, target: Path) -> Path:
    """``target``: a hard link to ``stored`` (a symlink stays one, and is then refused), or a copy where
    linking is not possible; ``stored`` itself when neither is."""
    try:
        os.link(stored, target, follow_symlinks=False)
    except FileExistsError:
        pass
    except OSError:
        try:
            shutil.copyfile(stored, target, follow_symlinks=False)
        except OSError:
            return stored
    return target


def _own_file_digest(path: Path) -> str | None:
    """sha256 of a regular file this user owns (no symlink); None when there is none."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return None
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """``write`` fills a temporary file beside ``path``, which is then renamed to it (or removed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as temporary:
        try:
            write(temporary)
        except BaseException:
            temporary.close()
            os.unlink(temporary.name)
            raise
    try:
        os.replace(temporary.name, path)
    except OSError:
        os.unlink(temporary.name)
        raise


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
