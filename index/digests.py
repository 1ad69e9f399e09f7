"""A pypiserver storage backend that hashes each file once.

Stock pypiserver re-hashes every file of a project on every /simple/<project>/
request. This backend keeps each file's sha256 in memory, keyed by path and
checked against the file's size, mtime, ctime and inode, so a replaced or
rewritten file is hashed again and a removed one is forgotten. Uploads are
written to a hidden temporary file and hard-linked into place, so a client or
server dying mid-upload never leaves a partial package on the index, and a
file is never replaced: of two simultaneous uploads of one file name, one wins
and the other is answered 409. An upload is also refused by the rules of
``index/uploads.py`` (one sdist and one wheel per version of the model package),
checked and placed under a lock on the folder, so two uploads racing for one
version's wheel store one. Symbolic links in the folder are neither listed nor
served: their target can change without the folder (or its watch) seeing it.

With the index's version records (index/numbers.py), a file of a staged or taken-back
version is listed nowhere (``get_all_packages``, which every page and download reads),
while uploads, removals and seals see every file (``listed``); an upload of a burned or
sealed version is refused, and a removal records the version as taken back.

An upload is hashed as it is written, so its bytes are read once: the digest is kept for the
stored file (when its size, mtime and inode are still those written) and the seal, the pages and
the audit log (``stored_sha256``) take it from there instead of reading the file again.

With a cache file, the digests also survive a restart: the file is read at
start-up (entries are checked against the files like any other; a damaged
file is ignored) and rewritten after a request that had to hash something. A
cache that cannot be written (full disk) is logged and retried, never an error.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import typing as t
from pathlib import Path

from pypiserver.backend import SimpleFileBackend, digest_file
from pypiserver.bottle_wrapper import HTTPError
from pypiserver.core import PkgFile

from index.metadata import upload_problem
from index.numbers import VersionStates
from index.statedb import StateError
from index.uploads import UploadRefused, check_room, owned, slot
from index.yanks import canonical_version


_log = logging.getLogger(__name__)  # unconfigured: warnings go to stderr, the index's server.log


def _signature(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def _is_entry(entry: object) -> bool:
    """A cache entry as ``save`` writes it: ``[[size, mtime_ns, ctime_ns, inode], "sha256=..."]``."""
    return (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)
            and isinstance(entry[0], list) and len(entry[0]) == 4 and all(type(n) is int for n in entry[0]))


def _remove_file(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # not a file of ours (a directory in the way): leave it


class DigestCachingBackend(SimpleFileBackend):
    def __init__(self, config: t.Any, cache_file: Path | None = None, states: VersionStates | None = None) -> None:
        super().__init__(config)
        self.states = states
        self._digests: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._lock = threading.Lock()
        self._cache_file = cache_file
        self._dirty = False
        self._save_lock = threading.Lock()  # one writer at a time: the last snapshot written is the newest
        self._save_failing = False  # log a failing write once, not after every request
        if cache_file is not None:
            self._load(cache_file)

    def _load(self, cache_file: Path) -> None:
        try:
            entries = json.loads(cache_file.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self._ignore_damaged(cache_file, str(exc))
            return
        if not isinstance(entries, dict):
            self._ignore_damaged(cache_file, f"a JSON {type(entries).__name__}, not an object")
            return
        for path, entry in entries.items():
            if _is_entry(entry):
                self._digests[path] = (tuple(entry[0]), entry[1])
            else:
                self._dirty = True

    def _ignore_damaged(self, cache_file: Path, why: str) -> None:
        """Every file is hashed again, and the cache rewritten after the next request."""
        _log.warning("index: ignoring the damaged digest cache %s (%s); rebuilding it", cache_file, why)
        self._dirty = True

    def save(self) -> None:
        """Write the cache file if anything was hashed since the last save.

        The cache only saves hashing: failing to write it never fails the request.
        The entries stay dirty, so the write is tried again after the next request.
        """
        if self._cache_file is None or not self._dirty:
            return
        with self._save_lock:
            with self._lock:
                snapshot, self._dirty = dict(self._digests), False
            temporary = self._cache_file.with_name(f".{self._cache_file.name}.{threading.get_ident()}.tmp")
            entries = {path: [list(signature), digest] for path, (signature, digest) in snapshot.items()}
            try:
                temporary.write_text(json.dumps(entries))
                os.replace(temporary, self._cache_file)
            except OSError as exc:
                with self._lock:
                    self._dirty = True
                _remove_file(temporary)
                if not self._save_failing:
                    _log.warning("index: cannot write the digest cache %s (%s); serving on, and retrying "
                                 "after each request", self._cache_file, exc)
                self._save_failing = True
                return
            if self._save_failing:
                _log.warning("index: the digest cache %s is written again", self._cache_file)
            self._save_failing = False

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
        """What the index serves: every file but those of staged or taken-back versions."""
        packages = self.listed()
        try:
            hidden = self.states.hidden() if self.states is not None else frozenset()
        except StateError as exc:  # what is sealed is unknown: serve none of it rather than a half
            raise HTTPError(500, str(exc)) from None
        if not hidden:
            return packages
        projects = {project for project, _ in hidden}
        return [pkg for pkg in packages if pkg.pkgname_norm not in projects
                or (pkg.pkgname_norm, canonical_version(pkg.version)) not in hidden]

    def find_version(self, name: str, version: str) -> t.Iterable[PkgFile]:
        """pypiserver's ``remove_pkg`` finds the files to remove here: staged ones too."""
        return [pkg for pkg in self.listed() if pkg.pkgname == name and pkg.version == version]

    def listed(self) -> list[PkgFile]:
        """Every file in the folder (no symbolic link), served or not."""
        packages = [pkg for pkg in super().get_all_packages() if not os.path.islink(pkg.fn)]
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
            place = slot(filename)
            if place is not None:
                check_room(place, self._held())  # before copying the bytes: a refusal costs nothing
                if self.states is not None:
                    self.states.check_upload(place.project, str(place.version))
            hashed, written = _write_hashed(stream, partial, self.hash_algo)
            problem = upload_problem(partial, filename)
            if problem:
                raise HTTPError(400, problem)
            with self.placing():
                if place is not None:
                    check_room(place, self._held())  # again: an upload may have taken the slot meanwhile
                    if self.states is not None:
                        self.states.check_upload(place.project, str(place.version))
                        # Recorded before it is placed: a file without a record is served (one put there
                        # by hand), so a reader must never find this one before its version is staged.
                        self.states.stored(place.project, str(place.version))
                # A hard link never replaces: of two uploads that both passed pypiserver's
                # exists-check, exactly one places its file.
                os.link(partial, destination)
        except FileExistsError:
            raise HTTPError(409, f"Package {filename!r} already exists!") from None
        except UploadRefused as refused:
            raise HTTPError(f"{refused.status} {refused.reason}", refused.reason) from None
        except StateError as exc:
            raise HTTPError(500, str(exc)) from None
        finally:
            partial.unlink(missing_ok=True)
        if hashed is not None:
            self._remember(destination, hashed, written)

    def _remember(self, path: Path, digest: str, written: tuple[int, int, int]) -> None:
        """Keep the digest computed while writing ``path``, if the file is still what was written (size,
        mtime, inode: the link and the unlink of the partial file change only its ctime)."""
        try:
            signature = _signature(os.stat(path))
        except FileNotFoundError:
            return
        if (signature[0], signature[1], signature[3]) == written:
            with self._lock:
                self._digests[str(path)] = (signature, digest)
                self._dirty = True

    def stored_sha256(self, filename: str) -> str | None:
        """The sha256 (hex) of an uploaded file as stored: the one kept when it was written, unless the
        file changed since; None when it is gone or the index hashes with another algorithm."""
        digest = self.digest(PkgFile(pkgname="", version="", fn=str(self.roots[0] / filename), root=str(self.roots[0]),
                                     relfn=filename))
        return digest.removeprefix("sha256=") if digest and digest.startswith("sha256=") else None

    def _held(self) -> list[str]:
        return [Path(pkg.fn).name for pkg in self.listed()]

    def remove_package(self, pkg: PkgFile) -> None:
        """Remove a file through the index: its version is taken back, its number burned."""
        try:
            with self.placing():
                self.remove_placed(pkg)
        except StateError as exc:
            raise HTTPError(500, str(exc)) from None

    def remove_placed(self, pkg: PkgFile) -> None:
        """``remove_package`` for a caller that holds ``placing()``. Recorded first: a removal that
        fails then leaves a burned version's file, served nowhere, never a removed one unrecorded."""
        if self.states is not None and owned(pkg.pkgname):
            self.states.take_back(pkg.pkgname_norm, canonical_version(pkg.version))
        super().remove_package(pkg)

    @contextlib.contextmanager
    def placing(self) -> t.Iterator[None]:
        """An exclusive lock on the package folder: threads and processes (gunicorn workers)
        serving it check and place one upload at a time."""
        folder = os.open(self.roots[0], os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # releases the lock

    def _forget(self, path: str) -> None:
        with self._lock:
            self._digests.pop(path, None)


def _write_hashed(stream: t.BinaryIO, destination: Path, algorithm: str | None) -> tuple[str | None, tuple[int, int, int]]:
    """pypiserver's ``write_file``, hashing the bytes as they pass: (``<algorithm>=<hex>`` or None without
    an algorithm, the written file's (size, mtime_ns, inode))."""
    digester = hashlib.new(algorithm) if algorithm else None
    offset = stream.tell()
    try:
        with open(destination, "wb") as out:
            for chunk in iter(lambda: stream.read(2**20), b""):
                out.write(chunk)
                if digester is not None:
                    digester.update(chunk)
            out.flush()
            written = os.fstat(out.fileno())
    finally:
        stream.seek(offset)
    digest = f"{algorithm}={digester.hexdigest()}" if digester is not None else None
    return digest, (written.st_size, written.st_mtime_ns, written.st_ino)


def remove_stale_partials(root: Path) -> None:
    """Partial uploads left by a killed server: nothing can finish them."""
    for leftover in root.glob(".*.part"):
        leftover.unlink(missing_ok=True)
