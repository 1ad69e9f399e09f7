"""A pypiserver storage backend that hashes each file once.

Stock pypiserver re-hashes every file of a project on every /simple/<project>/
request. This backend keeps each file's sha256 in memory, keyed by path and
checked against the file's size, mtime, ctime and inode, so a replaced or
rewritten file is hashed again and a removed one is forgotten. Uploads are
written to a hidden temporary file and renamed into place, so a client or
server dying mid-upload never leaves a partial package on the index.
"""

from __future__ import annotations

import os
import threading
import typing as t
from pathlib import Path

from pypiserver.backend import SimpleFileBackend, digest_file, write_file
from pypiserver.core import PkgFile


def _signature(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


class DigestCachingBackend(SimpleFileBackend):
    def __init__(self, config: t.Any) -> None:
        super().__init__(config)
        self._digests: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._lock = threading.Lock()
        self.hash_count = 0  # files actually read and hashed, for tests and benchmarks

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
            self.hash_count += 1
            # Stat again: a file that changed while being read is hashed again next time.
            if _signature(os.stat(pkg.fn)) == signature:
                self._digests[pkg.fn] = (signature, value)
        return value

    def get_all_packages(self) -> t.Iterable[PkgFile]:
        packages = list(super().get_all_packages())
        present = {pkg.fn for pkg in packages}
        with self._lock:
            for gone in [path for path in self._digests if path not in present]:
                del self._digests[gone]
        return packages

    def add_package(self, filename: str, stream: t.BinaryIO) -> None:
        destination = self.roots[0] / filename
        partial = destination.with_name(f".{filename}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            write_file(stream, partial)
            os.replace(partial, destination)
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
