"""A pypiserver storage backend that hashes each file once.

Stock pypiserver re-hashes every file of a project on every /simple/<project>/
request. This backend keeps each file's sha256 in memory, keyed by path and
checked against the file's size, mtime, ctime and inode, so a replaced or
rewritten file is hashed again and a removed one is forgotten. Uploads are
written to a hidden temporary file and renamed into place, so a client or
server dying mid-upload never leaves a partial package on the index, and
linked into place, which never replaces a file: of two simultaneous uploads
of one file name, one wins and the other is answered 409.

With a cache file, the digests also survive a restart: the file is read at
start-up (entries are checked against the files like any other) and rewritten
after a request that had to hash something.
"""

from __future__ import annotations

import json
import os
import threading
import typing as t
from pathlib import Path

from pypiserver.backend import SimpleFileBackend, digest_file, write_file
from pypiserver.bottle_wrapper import HTTPError
from pypiserver.core import PkgFile


def _signature(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


class DigestCachingBackend(SimpleFileBackend):
    def __init__(self, config: t.Any, cache_file: Path | None = None) -> None:
        super().__init__(config)
        self._digests: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._lock = threading.Lock()
        self._cache_file = cache_file
        self._dirty = False
        if cache_file is not None:
            self._load(cache_file)

    def _load(self, cache_file: Path) -> None:
        try:
            entries = json.loads(cache_file.read_text())
            self._digests = {path: (tuple(signature), digest) for path, (signature, digest) in entries.items()}
        except (FileNotFoundError, ValueError, TypeError):
            self._digests = {}  # no cache or a damaged one: everything is hashed again

    def save(self) -> None:
        """Write the cache file if anything was hashed since the last save."""
        if self._cache_file is None or not self._dirty:
            return
        with self._lock:
            snapshot, self._dirty = dict(self._digests), False
        temporary = self._cache_file.with_name(f".{self._cache_file.name}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps({path: [list(sig), digest] for path, (sig, digest) in snapshot.items()}))
        os.replace(temporary, self._cache_file)

    def digest(self, pkg: PkgFile) -> str | None:
        if self.hash_algo is None or pkg.fn is None:
            return None
        try:
            signature = _signature(os.stat(pkg.fn))
        except FileNotFoundError:
            self._forget(pkg.fn)
            return None
        cached = self._digests.get(pkg.fn)
        if cached is not None and cached[0] == signature:
            return cached[1]
        value = digest_file(pkg.fn, self.hash_algo)
        with self._lock:
            # Stat again: a file that changed while being read is hashed again next time.
            if _signature(os.stat(pkg.fn)) == signature:
                self._digests[pkg.fn] = (signature, value)
                self._dirty = True
        return value

    def get_all_packages(self) -> t.Iterable[PkgFile]:
        packages = list(super().get_all_packages())
        present = {pkg.fn for pkg in packages}
        with self._lock:
            for gone in [path for path in self._digests if path not in present]:
                del self._digests[gone]
                self._dirty = True
        return packages

    def add_package(self, filename: str, stream: t.BinaryIO) -> None:
        destination = self.roots[0] / filename
        partial = destination.with_name(f".{filename}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            write_file(stream, partial)
            # A hard link never replaces: of two uploads that both passed pypiserver's
            # exists-check, exactly one places its file.
            os.link(partial, destination)
        except FileExistsError:
            raise HTTPError(409, f"Package {filename!r} already exists!") from None
        finally:
            partial.unlink(missing_ok=True)
        self.digest(PkgFile(pkgname="", version="", fn=str(destination), root=str(self.roots[0]),
                            relfn=filename))

    def _forget(self, path: str) -> None:
        with self._lock:
            self._digests.pop(path, None)


def remove_stale_partials(root: Path) -> None:
    """Partial uploads left by a killed server: nothing can finish them."""
    for leftover in root.glob(".*.part"):
        leftover.unlink(missing_ok=True)
