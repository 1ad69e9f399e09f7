"""Channels: which version of the model package each channel serves, and how it came to.

A promotion (``POST /+promote`` with the upload credential, ``make promote``) appends one
line to the channel's history, ``channels/<channel>.jsonl`` in the index's state folder:
its number, the version, when (the index's clock), who (the credential and the name the
promoter gave) and the commit. The file only grows; each write is a whole new copy put in
place with ``os.replace`` under a lock, so a reader sees the history before or after a
promotion, never half of one. The last line is what the channel serves
(``index/channel_routes.py``): a rollback is a promotion of an older version.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

CHANNELS_FOLDER = "channels"  # in the state folder
CHANNEL_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
CHANNEL_NAME_LIMIT = 64
HISTORY_LIMIT = 4 * 2**20  # bytes of one channel's history the index reads (~20,000 promotions)
FIELD_LIMIT = 200  # characters of a promoter's name or a commit


class DamagedHistory(Exception):
    """A history file that is not what this module writes (edited by hand, a disk fault, too big)."""


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
    user: str  # the credential that promoted
    by: str  # who, as the promoter named themselves (git user, $USER)
    commit: str

    @classmethod
    def parse(cls, line: str) -> Promotion:
        fields = json.loads(line)
        promotion = cls(**{name: fields[name] for name in cls.__dataclass_fields__})
        if type(promotion.number) is not int or not all(
                isinstance(getattr(promotion, name), str) for name in ("version", "when", "user", "by", "commit")):
            raise ValueError("a field of the wrong type")
        return promotion

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


class ChannelStore:
    """Every channel's history, read again when another process (a gunicorn worker) changed it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._read: dict[str, tuple[tuple[int, int, int], list[Promotion]]] = {}

    def _path(self, channel: str) -> Path:
        if not valid_channel(channel):
            raise ValueError(f"not a channel name: {channel!r}")
        return self.folder / f"{channel}.jsonl"

    def channels(self) -> list[str]:
        try:
            names = sorted(p.name.removesuffix(".jsonl") for p in self.folder.glob("*.jsonl"))
        except OSError:
            return []
        return [name for name in names if valid_channel(name)]

    def history(self, channel: str) -> list[Promotion]:
        """The channel's promotions, oldest first ([] for a channel never promoted)."""
        if not valid_channel(channel):
            return []
        path = self._path(channel)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return []
        signature = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
        with self._lock:
            kept = self._read.get(channel)
            if kept and kept[0] == signature:
                return list(kept[1])
        promotions = self._parse(path)
        with self._lock:
            self._read[channel] = (signature, promotions)
        return list(promotions)

    def current(self, channel: str) -> Promotion | None:
        history = self.history(channel)
        return history[-1] if history else None

    @staticmethod
    def _parse(path: Path) -> list[Promotion]:
        with open(path, "rb") as handle:
            content = handle.read(HISTORY_LIMIT + 1)
        if len(content) > HISTORY_LIMIT:
            raise DamagedHistory(f"{path} is larger than {HISTORY_LIMIT} bytes; move it aside and promote again")
        try:
            return [Promotion.parse(line) for line in content.decode("utf-8").splitlines() if line.strip()]
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedHistory(f"{path} is damaged ({exc}); restore it from a backup") from None

    def promote(self, channel: str, version: str, when: str, user: str, by: str, commit: str) -> Promotion:
        """Append a promotion (numbered after the last one) and return it."""
        path = self._path(channel)
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # other processes serving the same state folder
            history = self._parse(path) if path.exists() else []
            promotion = Promotion(len(history) + 1, version, when, clean_field(user), clean_field(by),
                                  clean_field(commit))
            before = path.read_bytes() if path.exists() else b""
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(temporary, "wb") as handle:
                handle.write(before + promotion.line().encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            folder = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        return promotion
