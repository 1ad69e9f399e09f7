"""The audit log: every write on the index, who did it, when and from where, hash-chained.

An entry (the ``audit`` table of index/statedb.py) holds its number, the time (UTC), the
authenticated credential, the client's address (the socket's, never a header a client sets),
the action (upload with the file's sha256, remove, take-back, seal, yank and unyank with the
reason, promote, credential created or revoked, assign), the project, the version and details.
Its ``hash`` is the sha256 of the previous entry's hash and its own fields, so an entry edited
afterwards, or one taken out of the middle, no longer matches: ``verify`` names the first entry
whose hash does not hold. Appending reads only the newest entry (by its primary key): the same
cost at any length, in one transaction with the write lock, so workers append in turn.

What the chain cannot show is the newest entries cut off at the end, all at once: copy the
newest hash elsewhere (make audit prints it) to detect that.
"""

from __future__ import annotations

import hashlib
import json
import typing as t
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from index.access import package_of
from index.statedb import StateDB

GENESIS = "0" * 64
RECENT = 20  # entries the registry page shows for a package


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    who: str
    address: str
    action: str
    project: str
    version: str
    detail: dict
    prev: str
    hash: str

    def fields(self) -> dict:
        """What the hash covers: every field but the hash."""
        content = asdict(self)
        del content["hash"]
        return content


def chained(prev: str, fields: dict) -> str:
    """The hash of an entry: sha256 over the previous hash and the entry's fields (canonical JSON).

    >>> chained(GENESIS, {"a": 1}) == chained(GENESIS, {"a": 1}) != chained(GENESIS, {"a": 2})
    True
    """
    content = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev}\n{content}".encode()).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AuditLog:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def append(self, who: str, address: str, action: str, project: str = "", version: str = "",
               detail: dict | None = None) -> Entry:
        with self.db.write() as connection:
            last = connection.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            draft = Entry(seq, now(), who, address, action, project, version, detail or {}, prev, "")
            entry = Entry(**{**asdict(draft), "hash": chained(prev, draft.fields())})
            connection.execute(
                "INSERT INTO audit (seq, at, who, address, action, project, package, version, detail, prev, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.seq, entry.at, who, address, action, project, package_of(project) if project else "",
                 version, json.dumps(entry.detail, sort_keys=True), prev, entry.hash))
        return entry

    def entries(self, package: str | None = None, limit: int | None = None) -> list[Entry]:
        """Oldest first; of one package (its twins included) when given; the newest ``limit``."""
        where, parameters = ("WHERE package = ?", [package_of(package)]) if package else ("", [])
        order = f"ORDER BY seq DESC LIMIT {int(limit)}" if limit else "ORDER BY seq DESC"
        rows = self.db.read(f"SELECT seq, at, who, address, action, project, version, detail, prev, hash FROM audit "
                            f"{where} {order}", parameters)
        return [_entry(row) for row in reversed(rows)]

    def verify(self) -> tuple[int, int | None]:
        """(entries checked, the number of the first entry that breaks the chain, or None: intact)."""
        prev, count = GENESIS, 0
        for row in self._every():
            entry = _entry(row)
            count += 1
            if entry.prev != prev or chained(prev, entry.fields()) != entry.hash:
                return count, entry.seq
            prev = entry.hash
        return count, None

    def _every(self) -> t.Iterator[tuple]:
        connection = self.db.connection()
        yield from connection.execute(
            "SELECT seq, at, who, address, action, project, version, detail, prev, hash FROM audit ORDER BY seq")


def _entry(row: tuple) -> Entry:
    seq, at, who, address, action, project, version, detail, prev, digest = row
    try:
        parsed = json.loads(detail)
    except (TypeError, ValueError):
        parsed = {"unreadable": str(detail)[:200]}
    return Entry(seq, at, who, address, action, project, version, parsed if isinstance(parsed, dict) else
                 {"unreadable": str(detail)[:200]}, prev, digest)
