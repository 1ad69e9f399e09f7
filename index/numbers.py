"""A number is used once, and a release is served whole or not at all.

The index records every version of its own projects (index/owned_package.py: the model
package and its ``<package>-*`` siblings) any file of which it stored, in its state folder
(index/statedb.py), so the record outlives a restart and a replaced package folder:

- **staged**: a release's files arrive (the sdist, the wheel, the ``-onnx`` twin) but are
  served nowhere (simple pages, JSON, downloads, ``.metadata``, channel views, the registry
  page) until the release seals them (``POST /+seal``, index/release_routes.py): then all at
  once. A release killed between two uploads leaves a staged version nothing installs.
- **sealed**: served; a sealed version takes no other file (a twin uploaded after a release
  sealed without one is refused). The data package's one wheel is complete on arrival: it is
  sealed as it is stored. Versions on the index before these records (a state folder of an
  earlier index) are recorded at the first start: sealed, but for a model version with its
  sdist and no wheel (what a release killed between its uploads left), which is staged.
- **taken back**: removed through the index (a failed release, an abandoned one); its number
  is burned: a later upload of it is refused with 409, whatever its bytes.

Files put in the package folder by hand, which the index never stored, have no record and
are served as pypiserver serves them.
"""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timezone

from packaging.utils import canonicalize_name

from index import owned_package
from index.statedb import StateDB
from index.uploads import UploadRefused, owned

STAGED, SEALED, TAKEN_BACK = "staged", "sealed", "taken back"
MIGRATED = "versions recorded"  # the meta key set once the package folder's versions were recorded


def sealed_on_arrival(project: str) -> bool:
    """The data package: one wheel, its own version, complete once stored."""
    return canonicalize_name(project) == f"{owned_package.name()}-data"


def in_release(project: str) -> bool:
    """A project whose versions a release uploads together and seals: the model package and every
    sibling but the data package (``<package>-onnx``, and anything else named ``<package>-*``)."""
    return owned(project) and not sealed_on_arrival(project)


def when(timestamp: float) -> str:
    """
    >>> when(0)
    '1970-01-01T00:00:00Z'
    """
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Record:
    project: str  # canonical
    version: str  # canonical
    state: str
    stored: float  # when its first file was stored
    changed: float  # its last file stored, its seal or its take-back

    def as_json(self, now: float, abandoned_after: float) -> dict:
        age = max(0.0, now - self.changed)
        return {"project": self.project, "version": self.version, "state": self.state,
                "stored": when(self.stored), "changed": when(self.changed), "age_seconds": round(age, 3),
                "abandoned": self.state == STAGED and age >= abandoned_after}


class VersionStates:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._hidden: tuple[int, frozenset[tuple[str, str]]] | None = None

    def generation(self) -> int:
        return self.db.generation()

    def hidden(self) -> frozenset[tuple[str, str]]:
        """(project, version) of every staged or taken-back version: served nowhere."""
        generation = self.db.generation()
        with self._lock:
            if self._hidden is not None and self._hidden[0] == generation:
                return self._hidden[1]
        rows = self.db.read("SELECT project, version FROM versions WHERE state != ?", (SEALED,))
        hidden = frozenset((project, version) for project, version in rows)
        with self._lock:
            self._hidden = (generation, hidden)
        return hidden

    def records(self, project: str | None = None, version: str | None = None) -> list[Record]:
        clauses, parameters = [], []
        for column, value in (("project", project and canonicalize_name(project)), ("version", version)):
            if value is not None:
                clauses.append(f"{column} = ?")
                parameters.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return [Record(*row) for row in self.db.read(
            f"SELECT project, version, state, stored, changed FROM versions{where} ORDER BY project, version", parameters)]

    def release_records(self, version: str) -> list[Record]:
        """The records of ``version`` of every project a release seals together."""
        return [record for record in self.records(version=version) if in_release(record.project)]

    def check_upload(self, project: str, version: str) -> None:
        """Refuse (409) a file for a version whose number is burned or whose release is sealed."""
        project = canonicalize_name(project)
        related = self.release_records(version) if in_release(project) else self.records(project, version)
        for record in related:
            if record.state == TAKEN_BACK:
                raise UploadRefused(409, f"{record.project} {version} was taken back on {when(record.changed)}: "
                                         f"a number is used once, so {version} is burned; release the next version "
                                         "(make release picks it)")
        for record in related:
            if record.state == SEALED:
                raise UploadRefused(409, f"{project} {version}: version {version} was sealed on "
                                         f"{when(record.changed)} and takes no other file; release the next version "
                                         "(make release picks it)")

    def stored(self, project: str, version: str) -> None:
        """A file of ``project`` ``version`` was placed (the caller holds the folder's lock)."""
        project, now = canonicalize_name(project), time.time()
        state = SEALED if sealed_on_arrival(project) else STAGED
        with self.db.write() as db:
            db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, version) "
                       "DO UPDATE SET changed = excluded.changed", (project, version, state, now, now))

    def seal(self, pairs: t.Iterable[tuple[str, str]]) -> None:
        now = time.time()
        with self.db.write() as db:
            for project, version in pairs:
                db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, version) "
                           "DO UPDATE SET state = excluded.state, changed = excluded.changed",
                           (canonicalize_name(project), version, SEALED, now, now))

    def take_back(self, project: str, version: str) -> None:
        now = time.time()
        with self.db.write() as db:
            db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, version) "
                       "DO UPDATE SET state = excluded.state, changed = excluded.changed",
                       (canonicalize_name(project), version, TAKEN_BACK, now, now))

    def record_existing(self, found: t.Callable[[], list[tuple[str, str, str, float]]]) -> None:
        """At the first start with these records: the versions already in the package folder.

        ``found`` lists (project, version, kind, mtime) of the owned files. A model version with an sdist
        and no wheel is what a release killed between its uploads left (the sdist goes first): staged,
        with its siblings' files of that version, so nothing installs it and a release takes it back.
        Everything else stays served: sealed."""
        if self.db.meta(MIGRATED) is not None:
            return
        package = owned_package.name()
        with self.db.write() as db:
            if db.execute("SELECT 1 FROM meta WHERE key = ?", (MIGRATED,)).fetchone():
                return  # another worker did it meanwhile
            files = found()
            kinds: dict[str, set[str]] = {}
            for project, version, kind, _ in files:
                if project == package:
                    kinds.setdefault(version, set()).add(kind)
            incomplete = {version for version, held in kinds.items() if held == {"sdist"}}
            for project, version, _, mtime in files:
                state = STAGED if version in incomplete and in_release(project) else SEALED
                db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, version) DO UPDATE "
                           "SET stored = min(stored, excluded.stored), changed = max(changed, excluded.changed)",
                           (project, version, state, mtime, mtime))
            db.execute("INSERT INTO meta VALUES (?, ?)", (MIGRATED, when(time.time())))
