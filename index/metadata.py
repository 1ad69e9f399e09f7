"""Each wheel's core metadata (PEP 658/714), extracted once and kept by the wheel's sha256.

Resolvers (pip, uv, poetry) read a wheel's dependencies from ``<wheel-url>.metadata``
when the link announces it, instead of downloading the whole wheel: for a model
package that is the difference between a few hundred bytes and the model. The
extracted ``METADATA`` is kept in memory and, with a folder, on disk as
``<wheel sha256>.metadata``, so a restart reads small files and opens no wheel.
A wheel's content is fixed by its sha256, so an entry never goes stale; a
replaced wheel has another sha256 and is extracted again.

A ``METADATA`` larger than ``METADATA_LIMIT`` (index/settings.py) is never read
past the limit: that wheel's link simply announces no core metadata. Such a wheel
is also refused at upload (``upload_problem``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import zipfile
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

from index.archive import TooLarge, open_zip, read_file, read_member, size
from index.settings import METADATA_LIMIT

_log = logging.getLogger(__name__)  # unconfigured: warnings go to stderr, the index's server.log


@dataclass(frozen=True)
class CoreMetadata:
    content: bytes
    requires_python: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @classmethod
    def parse(cls, content: bytes) -> CoreMetadata:
        """
        >>> CoreMetadata.parse(b"Metadata-Version: 2.1\\nName: m\\nRequires-Python: >=3.11\\n\\nText").requires_python
        '>=3.11'
        """
        value = BytesHeaderParser().parsebytes(content).get("Requires-Python")
        return cls(content, str(value).strip() if value else None)


def extract(wheel: Path) -> bytes | None:
    """The wheel's ``<name>-<version>.dist-info/METADATA``; None for a file that is no valid wheel
    or whose METADATA is larger than the index reads."""
    try:
        return read_metadata(wheel)
    except TooLarge as exc:
        _log.warning("index: no core metadata for %s: %s", wheel, exc)
        return None


def read_metadata(wheel: Path) -> bytes | None:
    """Like ``extract``, but a METADATA over the limit raises TooLarge."""
    try:
        with open_zip(Path(wheel)) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            return read_member(archive, names[0], METADATA_LIMIT) if len(names) == 1 else None
    except (zipfile.BadZipFile, OSError, KeyError, EOFError, RuntimeError, NotImplementedError):
        return None


def upload_problem(path: Path, filename: str) -> str | None:
    """Why an uploaded file is refused, or None. A wheel whose METADATA (or list of files) is
    larger than the index reads is no wheel we release: refusing it keeps it off every page."""
    if not filename.endswith(".whl"):
        return None
    try:
        read_metadata(path)
    except TooLarge as exc:
        problem = f"{filename} refused: {exc}; see \"Bounded reads of uploads\" in docs/running-the-index.md"
        _log.warning("index: upload of %s", problem)
        return problem
    return None


class MetadataCache:
    def __init__(self, folder: Path | None) -> None:
        self._folder = folder
        self._known: dict[str, CoreMetadata | None] = {}
        self._lock = threading.Lock()

    def of(self, wheel: Path, wheel_sha256: str) -> CoreMetadata | None:
        """The metadata of ``wheel`` (whose sha256 the backend knows), extracted on first sight."""
        if wheel_sha256 in self._known:
            return self._known[wheel_sha256]
        stored = self._folder / f"{wheel_sha256}.metadata" if self._folder else None
        content = _read(stored) if stored else None
        if content is None:
            content = extract(wheel)
            if content is not None and stored is not None:
                keep(stored, content)
        found = CoreMetadata.parse(content) if content is not None else None
        with self._lock:
            self._known[wheel_sha256] = found
        return found


def _read(path: Path) -> bytes | None:
    """A kept METADATA; one over the limit (kept before there was one) is removed and not served."""
    try:
        if path.stat().st_size > METADATA_LIMIT:
            _log.warning("index: removing %s: larger than the %s the index reads", path, size(METADATA_LIMIT))
            path.unlink()
            return None
    except OSError:
        return None
    return read_file(path, METADATA_LIMIT)


def keep(path: Path, content: bytes, what: str = "the core metadata") -> None:
    """Keep a copy of ``what`` on disk; like the digest cache, failing to is logged, never a failed
    request (the caller serves from memory)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(content)
        os.replace(temporary, path)
    except OSError as exc:
        # logging, not print: a full disk also fills server.log, and logging never raises for that
        _log.warning("index: cannot keep %s in %s (%s); it is served from memory and "
                     "written again after a restart", what, path, exc.strerror)
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
