"""Password checks that pay the bcrypt cost once per credential, not per request.

A verified (user, password) pair is remembered in memory as an HMAC under a
random key made at start-up: nothing weaker than the htpasswd file is ever
written to disk, and a changed htpasswd file empties the memory. Wrong
credentials are never remembered, so each one is checked in full. A check
still running when the file changes is answered but not remembered: it was
made against the old file (a removed user, a rotated password).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from pathlib import Path

from passlib.apache import HtpasswdFile


class CachedHtpasswdAuther:
    def __init__(self, htpasswd: Path) -> None:
        self._file = HtpasswdFile(str(htpasswd))
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()
        self._generation = 0  # bumped on every reload of the file
        self._lock = threading.Lock()

    def __call__(self, username: str, password: str) -> bool:
        token = hmac.new(self._key, f"{username}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if self._file.load_if_changed():
                self._generation += 1
                self._verified.clear()
            if token in self._verified:
                return True
            checked_against = self._generation
        if not self._file.check_password(username, password):
            return False
        with self._lock:
            if self._generation == checked_against:
                self._verified.add(token)
        return True
