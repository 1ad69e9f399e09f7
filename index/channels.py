"""Channels: which version of the model package each channel serves, which bytes, and how it came to.

A promotion (``POST /+promote`` with the upload credential, ``make promote``) is one row of the
index's records (index/statedb.py): its number in the channel, the version, when (the index's
clock), who (the user of the credential the request authenticated with, never a name the client
sends), the commit the version was built from (read from its wheel's metadata), a free-text note
of the promoter's, and the sha256 of every file the channel will serve (the model package's sdist
and wheel, its ``-onnx`` twin when the release built one). The channel's view serves exactly
those bytes (index/channel_routes.py), or nothing.

The history only grows: appending a promotion and reading the current one are index lookups
(constant time at 100,000 promotions, ``make bench``); listings read one page of the newest
entries. Histories of an earlier index (``channels/<channel>.jsonl``, one JSON promotion a line,
rewritten whole on each promotion) are copied into the records at the first start; the files
stay where they are.
"""

from __future__ import annotations

import json
import logging
import re
import typing as t
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.statedb import StateDB

_log = logging.getLogger(__name__)  # unconfigured: warnings go to stderr, the index's server.log

CHANNELS_FOLDER = "channels"  # in the state folder: where an earlier index kept its histories
CHANNEL_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
CHANNEL_NAME_LIMIT = 64
FIELD_LIMIT = 200  # characters of a note or a commit
PAGE_SIZE = 20  # promotions of a channel a listing shows at once (the newest first page)
MIGRATED = "channel histories copied"  # the meta key set once the .jsonl histories were read


def valid_channel(name: str) -> bool:
    """
    >>> [valid_channel(n) for n in ("prod", "prod-eu", "Prod", "prod_eu", "-prod", "", "a" * 65)]
    [True, True, False, False, False, False, False]
    """
    return len(name) <= CHANNEL_NAME_LIMIT and CHANNEL_PATTERN.fullmatch(name) is not None


def clean_field(value: str) -> str:
    """A promoter-given text as recorded: printable, one line, bounded.

    >>> clean_field("ann\\n<b>"), len(clean_field("x" * 500))
    ('ann <b>', 200)
    """
    return "".join(c if c.isprintable() else " " for c in value)[:FIELD_LIMIT]


@dataclass(frozen=True)
class Promotion:
    number: int
    version: str
    when: str  # ISO 8601, UTC, the index's clock
    user: str  # the credential's user the request authenticated as
    commit: str  # the commit the version was built from, as its wheel records it
    note: str = ""  # the promoter's own words
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # project -> {file name: sha256}

    @classmethod
    def from_json(cls, fields: dict) -> Promotion:
        """A promotion as ``line`` wrote it; an earlier index's (``by``: the name the promoter gave) too."""
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        note = fields.get("note", fields.get("by", ""))
        files = fields.get("files", {})
        promotion = cls(fields["number"], fields["version"], fields["when"], fields["user"], fields["commit"],
                        note, files)
        if type(promotion.number) is not int or not all(
                isinstance(getattr(promotion, name), str) for name in ("version", "when", "user", "commit", "note")):
            raise ValueError("a field of the wrong type")
        if not isinstance(files, dict) or not all(
                isinstance(names, dict) and all(isinstance(v, str) for v in names.values()) for names in files.values()):
            raise ValueError("files is not a project -> {file: sha256} mapping")
        return promotion

    @classmethod
    def parse(cls, line: str) -> Promotion:
        return cls.from_json(json.loads(line))

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    def pinned(self, project: str) -> dict[str, str] | None:
        """The files (name -> sha256) of ``project`` this promotion serves; None: it has none."""
        return self.files.get(project)


class ChannelStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def channels(self) -> list[str]:
        return [name for (name,) in self.db.read("SELECT name FROM channels ORDER BY name")]

    def totals(self) -> dict[str, int]:
        """Each channel's number of promotions."""
        return dict(self.db.read("SELECT name, promotions FROM channels ORDER BY name"))

    def current(self, channel: str) -> Promotion | None:
        """What ``channel`` serves (None: never promoted): one index lookup, whatever the history's length."""
        if not valid_channel(channel):
            return None
        found = self._promotions(channel, "number = (SELECT promotions FROM channels WHERE name = ?)", (channel,))
        return found[-1] if found else None

    def history(self, channel: str, limit: int | None = PAGE_SIZE, page: int = 1) -> list[Promotion]:
        """One page of ``channel``'s promotions, oldest first: page 1 the newest ``limit`` (None: every one)."""
        if not valid_channel(channel):
            return []
        if limit is None:
            return self._promotions(channel, "1", ())
        total = self.totals().get(channel, 0)
        newest = total - (page - 1) * limit
        return self._promotions(channel, "number > ? AND number <= ?", (newest - limit, newest))

    def _promotions(self, channel: str, where: str, parameters: tuple) -> list[Promotion]:
        rows = self.db.read(f"SELECT number, version, at, user, built_from, note FROM promotions "
                            f"WHERE channel = ? AND {where} ORDER BY number", (channel, *parameters))
        if not rows:
            return []
        files: dict[int, dict[str, dict[str, str]]] = {}
        for number, project, filename, sha256 in self.db.read(
                "SELECT number, project, filename, sha256 FROM promoted_files WHERE channel = ? AND number BETWEEN ? AND ?",
                (channel, rows[0][0], rows[-1][0])):
            files.setdefault(number, {}).setdefault(project, {})[filename] = sha256
        return [Promotion(number, version, at, user, built_from, note, files.get(number, {}))
                for number, version, at, user, built_from, note in rows]

    def promote(self, channel: str, version: str, when: str, user: str, commit: str, note: str,
                files: dict[str, dict[str, str]]) -> Promotion:
        """Append a promotion (numbered after the last one) and return it."""
        if not valid_channel(channel):
            raise ValueError(f"not a channel name: {channel!r}")
        with self.db.write() as db:
            row = db.execute("SELECT promotions FROM channels WHERE name = ?", (channel,)).fetchone()
            promotion = Promotion((row[0] if row else 0) + 1, version, when, clean_field(user), clean_field(commit),
                                  clean_field(note), files)
            _insert(db, channel, promotion)
        return promotion

    def copy_histories(self, folder: Path, pins: t.Callable[[str], dict[str, dict[str, str]]]) -> None:
        """Once: an earlier index's ``<channel>.jsonl`` histories into the records, each promotion with the
        sha256 of the files its version has now (``pins``). A history that cannot be read is left out (its
        channel then answers 404, never another version) and named in the server log."""
        if self.db.meta(MIGRATED) is not None:
            return
        with self.db.write() as db:
            if db.execute("SELECT 1 FROM meta WHERE key = ?", (MIGRATED,)).fetchone():
                return
            for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
                channel = path.name.removesuffix(".jsonl")
                if not valid_channel(channel) or db.execute("SELECT 1 FROM channels WHERE name = ?",
                                                            (channel,)).fetchone():
                    continue
                try:
                    with open(path, encoding="utf-8") as handle:
                        history = [Promotion.parse(line) for line in handle if line.strip()]
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    _log.warning("index: the history of channel %s (%s) cannot be read (%s); it was not copied: "
                                 "promote a version to the channel again", channel, path.name, exc)
                    continue
                pinned: dict[str, dict[str, dict[str, str]]] = {}
                for old in history:
                    pinned.setdefault(old.version, pins(old.version))
                _restore(db, channel, [Promotion(0, old.version, old.when, old.user, old.commit, old.note,
                                                 pinned[old.version]) for old in history])
            db.execute("INSERT INTO meta VALUES (?, ?)", (MIGRATED, "yes"))

    def restore(self, channel: str, promotions: t.Iterable[Promotion]) -> int:
        """Append a history kept elsewhere (another index's, a backup) in one transaction, numbered after
        the channel's last promotion; how many the channel has then."""
        if not valid_channel(channel):
            raise ValueError(f"not a channel name: {channel!r}")
        with self.db.write() as db:
            return _restore(db, channel, promotions)


def _restore(db: t.Any, channel: str, promotions: t.Iterable[Promotion]) -> int:
    row = db.execute("SELECT promotions FROM channels WHERE name = ?", (channel,)).fetchone()
    number = row[0] if row else 0
    for promotion in promotions:
        number += 1
        _insert(db, channel, Promotion(number, promotion.version, promotion.when, clean_field(promotion.user),
                                       clean_field(promotion.commit), clean_field(promotion.note), promotion.files))
    return number


def _insert(db: t.Any, channel: str, promotion: Promotion) -> None:
    db.execute("INSERT INTO promotions VALUES (?, ?, ?, ?, ?, ?, ?)",
               (channel, promotion.number, promotion.version, promotion.when, promotion.user, promotion.commit,
                promotion.note))
    db.executemany("INSERT INTO promoted_files VALUES (?, ?, ?, ?, ?)",
                   [(channel, promotion.number, project, filename, sha256)
                    for project, names in promotion.files.items() for filename, sha256 in names.items()])
    db.execute("INSERT INTO channels VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET promotions = excluded.promotions",
               (channel, promotion.number))
