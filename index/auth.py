"""Password checks that pay the bcrypt cost once per credential, not per request.

A verified (user, password) pair is remembered in memory as an HMAC under a
random key made at start-up: nothing weaker than the htpasswd file is ever
written to disk, and a changed htpasswd file empties the memory. Wrong
credentials are never remembered, so each one is checked in full. A check
still running when the file changes is answered but not remembered: it was
made against the old file (a removed user, a rotated password). Requests
that bring a pair while that same pair is being checked wait for the check
instead of running bcrypt each: a fleet of replicas starting at once with the
consumers' credential pays for one check, not hundreds.

The file counts as changed when its inode, size, mtime or ctime differ: passlib
alone compares the mtime, and a file replaced with the same mtime kept an old
password working.

A read-only user (the consumers' credential) may read and nothing else: every
request of theirs that is not a GET or HEAD is refused with 403, whatever the
route, so a new write route cannot be opened to them by mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import typing as t
from pathlib import Path

from passlib.apache import HtpasswdFile

READ_METHODS = frozenset({"GET", "HEAD"})


def _signature(path: Path) -> tuple[int, ...] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


class VerifiedPairs:
    """The (user, password) pairs verified against the current credentials, as HMACs under a key made at
    start-up, and the checks running now: a pair brought while that same pair is being checked waits for
    the check instead of running bcrypt again. Its owner's ``lock`` guards it; ``forget`` when the
    credentials change (a check still running then is answered but not remembered)."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._checking: dict[bytes, threading.Event] = {}
        self._generation = 0

    def token(self, username: str, password: str) -> bytes:
        return hmac.new(self._key, f"{username}\0{password}".encode(), hashlib.sha256).digest()

    def forget(self) -> None:
        """Every remembered pair dropped. Holds the lock."""
        self._generation += 1
        self._verified.clear()

    def remembered(self, token: bytes) -> bool:
        """Holds the lock."""
        return token in self._verified

    def check(self, token: bytes, current: t.Callable[[], t.Any], verify: t.Callable[[t.Any], bool],
              unchanged: t.Callable[[], bool] = lambda: False) -> bool:
        """True if the pair is remembered, else if ``verify(found)`` says so; ``current()`` (called under the
        lock) reloads the credentials if they changed and returns what ``verify`` needs, or a false value when
        the user is unknown (then False at once).

        ``unchanged()``, asked without the lock, says whether the credentials are still those last loaded (its
        owner forgets every pair before it records newer ones): a remembered pair is then let in without the
        lock, which every request of a fleet with one credential would otherwise queue on."""
        if token in self._verified and unchanged():
            return True
        while True:
            with self.lock:
                found = current()
                if not found:
                    return False
                if token in self._verified:
                    return True
                running = self._checking.get(token)
                if running is None:
                    running = self._checking[token] = threading.Event()
                    checked_against = self._generation
                    break
            # A fleet arriving at once with one credential: the pair is checked once while the others wait,
            # then they find it remembered (or, if it was wrong or the credentials changed meanwhile, check it).
            running.wait()
        try:
            if not verify(found):
                return False
            with self.lock:
                if self._generation == checked_against:
                    self._verified.add(token)
            return True
        finally:
            with self.lock:
                del self._checking[token]
            running.set()


class CachedHtpasswdAuther:
    def __init__(self, htpasswd: Path) -> None:
        self._path = htpasswd
        self._seen = _signature(htpasswd)
        self._file = HtpasswdFile(str(htpasswd))
        self._lock = threading.Lock()
        self._pairs = VerifiedPairs(self._lock)

    def _reload_if_changed(self) -> bool:
        """Read the file again if it changed (the cache emptied); False while it is missing. Holds the lock."""
        seen = _signature(self._path)
        if seen != self._seen:
            self._pairs.forget()  # before the new signature is recorded: see _unchanged
            self._seen = seen
            if seen is not None:
                self._file.load()
        return seen is not None

    def knows(self, username: str) -> bool:
        """Is ``username`` a user of the htpasswd file (no password checked: cheap)?"""
        with self._lock:
            return self._reload_if_changed() and username in self._file.users()

    def remembered(self, username: str, password: str) -> bool:
        """Was this very pair verified against the current file (no bcrypt: cheap)?"""
        token = self._pairs.token(username, password)
        with self._lock:
            return self._reload_if_changed() and self._pairs.remembered(token)

    def _unchanged(self) -> bool:
        """Is the file the one last loaded (asked without the lock)?"""
        return _signature(self._path) == self._seen

    def __call__(self, username: str, password: str) -> bool:
        # removed: nobody is let in until it is back
        return self._pairs.check(self._pairs.token(username, password), self._reload_if_changed,
                                 lambda _: self._file.check_password(username, password), self._unchanged)


def refuse_writes_by(read_only: t.Callable[[str], bool]) -> t.Callable[[], None]:
    """A bottle ``before_request`` hook: the users ``read_only`` says are may only GET and HEAD."""
    from pypiserver.bottle_wrapper import HTTPError, request

    def refuse() -> None:
        credentials = request.auth
        if credentials and request.method not in READ_METHODS and read_only(credentials[0]):
            raise HTTPError(403, f"{credentials[0]} is a read-only credential: use an upload credential "
                                 "(credentials.json, or one make credential made) to change the index")
    return refuse
