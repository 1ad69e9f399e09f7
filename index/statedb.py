"""The index's own records in one SQLite file of its state folder (``index.sqlite3``): which
versions of its package it stored, sealed and took back (index/numbers.py), every
channel's promotions (index/channels.py), the credentials and the names teams own
(index/access.py) and the audit log (index/audit.py).

SQLite keeps them correct under several threads (waitress) and processes (gunicorn workers)
serving one state folder: every change is one transaction (``BEGIN IMMEDIATE``: one writer
at a time, readers never blocked, WAL), flushed to disk before it is answered. Each thread
has its own connection. ``generation()`` moves whenever any connection, in any process,
committed a change, so pages rendered from the records are kept until then.

A file that is not a database this module can read (a disk fault, edited by hand) is a
``StateError``: one line, naming the file by its name only (never the server's path).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import typing as t
from pathlib import Path

STATE_FILE = "index.sqlite3"
BUSY_TIMEOUT = 30.0  # seconds a writer waits for another (a promotion, an upload) to commit

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    project TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,
    stored REAL NOT NULL, changed REAL NOT NULL,
    PRIMARY KEY (project, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (name TEXT PRIMARY KEY, promotions INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS promotions (
    channel TEXT NOT NULL, number INTEGER NOT NULL, version TEXT NOT NULL, at TEXT NOT NULL,
    user TEXT NOT NULL, built_from TEXT NOT NULL, note TEXT NOT NULL,
    PRIMARY KEY (channel, number)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS promoted_files (
    channel TEXT NOT NULL, number INTEGER NOT NULL, project TEXT NOT NULL, filename TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (channel, number, filename)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS credentials (
    name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, packages TEXT NOT NULL,
    created REAL NOT NULL, revoked REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
    package TEXT PRIMARY KEY, scope TEXT NOT NULL, claimed_by TEXT NOT NULL, at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, address TEXT NOT NULL, action TEXT NOT NULL,
    project TEXT NOT NULL, package TEXT NOT NULL, version TEXT NOT NULL, detail TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_package ON audit (package, seq);
"""


class StateError(Exception):
    """The records cannot be read or written; the message says what to do."""


def _failed(exc: sqlite3.Error) -> StateError:
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return StateError(f"the index's records ({STATE_FILE}) stayed locked by another request for "
                          f"{BUSY_TIMEOUT:.0f} s; retry")
    return StateError(f"the index's records ({STATE_FILE} in its state folder) cannot be used ({exc}); "
                      "restore that file from a backup, or move it aside to start new records")


class StateDB:
    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        folder.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._watch_lock = threading.Lock()
        self._watcher: sqlite3.Connection | None = None  # reads only: data_version moves with every other commit
        self._watcher_pid: int | None = None
        self._seen: int | None = None
        self._generation = 0
        try:
            self.connection().executescript(SCHEMA)  # each statement idempotent: workers may race here
        except sqlite3.Error as exc:
            raise _failed(exc) from None
        with contextlib.suppress(OSError):  # credential hashes and the audit log: owner-only, as SQLite's -wal follows
            os.chmod(self.path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # a burned number or a promotion survives a power cut
        return connection

    def connection(self) -> sqlite3.Connection:
        """This thread's connection; a new one in a forked process (gunicorn --preload): SQLite connections
        must not cross a fork."""
        connection, pid = getattr(self._local, "connection", None), getattr(self._local, "pid", None)
        if connection is None or pid != os.getpid():
            try:
                connection = self._local.connection = self._connect()
            except sqlite3.Error as exc:
                raise _failed(exc) from None
            self._local.pid = os.getpid()
        return connection

    def read(self, sql: str, parameters: t.Sequence = ()) -> list[tuple]:
        try:
            return self.connection().execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise _failed(exc) from None

    @contextlib.contextmanager
    def write(self) -> t.Iterator[sqlite3.Connection]:
        """One transaction: every change in the block, or none (an exception rolls it back)."""
        connection = self.connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _failed(exc) from None
        try:
            yield connection
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(connection)
            raise _failed(exc) from None
        except BaseException:
            _rollback(connection)
            raise

    def generation(self) -> int:
        """A number that changes after any commit by any connection (this process's threads, other
        workers); read on every page request, so it costs one pragma."""
        with self._watch_lock:
            try:
                if self._watcher is None or self._watcher_pid != os.getpid():
                    self._watcher, self._watcher_pid, self._seen = self._connect(), os.getpid(), None
                version = self._watcher.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                raise _failed(exc) from None
            if version != self._seen:
                self._seen = version
                self._generation += 1
            return self._generation

    def meta(self, key: str) -> str | None:
        rows = self.read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None


def _rollback(connection: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        connection.execute("ROLLBACK")
