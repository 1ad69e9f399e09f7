"""Results of deterministic work, kept by the digest of everything the work depends on.

A warm release redoes nothing whose inputs did not change: the evaluation numbers of a
model (its pickle's bytes, the held-out rows, the library versions) and the figures drawn
from them. An entry is ``.cache/<kind>/<digest>`` in the checkout (ignored by git). The
digest covers the inputs, the library versions and the source of the module doing the
work, so an entry is only ever the result that work would give again. Best effort: a
cache that cannot be written costs the work next time, and an entry that cannot be read
is done again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline.config import WORK_CACHE_DIR


def digest(*parts: object) -> str:
    """The sha256 of ``parts`` as canonical JSON (bytes as their sha256).

    >>> digest("a", {"b": 1}) == digest("a", {"b": 1}) != digest("a", {"b": 2})
    True
    """
    def default(value: object) -> str:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return hashlib.sha256(value).hexdigest()
        raise TypeError(f"{type(value).__name__} is not part of a cache key")
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=default).encode()).hexdigest()


def source_digest(path: str | Path) -> str:
    """The sha256 of a module's source file: part of the key of the work that module does."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read(kind: str, key: str, cache_dir: Path | None = None) -> bytes | None:
    try:
        return ((cache_dir or WORK_CACHE_DIR) / kind / key).read_bytes()
    except OSError:
        return None


def write(kind: str, key: str, content: bytes, cache_dir: Path | None = None) -> None:
    folder = (cache_dir or WORK_CACHE_DIR) / kind
    temporary = folder / f".{key}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(content)
        os.replace(temporary, folder / key)
    except OSError:
        temporary.unlink(missing_ok=True)
