"""Yanked versions (PEP 592), kept in one JSON file in the index's state folder.

A yank never touches the package files: it is a reason recorded per project and
version, served as ``data-yanked`` so that resolvers skip the version for ranges
and still install it for an exact pin. The file is rewritten atomically and read
again when another process (a gunicorn worker) changed it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import typing as t
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_log = logging.getLogger(__name__)  # unconfigured: warnings go to stderr, the index's server.log

YANKS_FILE = "yanked.json"
# Characters of a yank reason: every simple page, JSON page and the registry page carry it, so one
# credential's long text would be sent with every resolver's request for the project.
REASON_LIMIT = 1000


def reason_too_long(reason: str | None) -> str | None:
    """What is wrong with a yank reason over REASON_LIMIT, and what to do (None: nothing)."""
    if reason is None or len(reason) <= REASON_LIMIT:
        return None
    return (f"a yank reason is at most {REASON_LIMIT} characters and this one has {len(reason)}: "
            "give a shorter REASON=\"...\" (link to a longer write-up)")


def canonical_version(version: str) -> str:
    """The one spelling a version is recorded under.

    >>> canonical_version("1.1.2+Titanic"), canonical_version("v1.01.2")
    ('1.1.2+titanic', '1.1.2')
    """
    try:
        return str(Version(version))
    except InvalidVersion:
        return version


class DamagedYankFile(Exception):
    """The yank file is not the JSON this module writes (edited by hand, or a disk fault)."""


class YankStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._yanked: dict[str, dict[str, str]] = {}

    def _refresh(self) -> None:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            self._seen, self._yanked = None, {}
            return
        signature = (stat.st_mtime_ns, stat.st_ino)
        if signature != self._seen:
            try:
                content = json.loads(self._path.read_text(encoding="utf-8"))
                if not all(isinstance(v, dict) for v in content.values()):
                    raise ValueError("not a project -> {version: reason} mapping")
            except (ValueError, AttributeError) as exc:
                raise DamagedYankFile(f"{self._path} is damaged ({exc}); restore it or delete it "
                                      "and yank again") from None
            self._yanked, self._seen = content, signature

    def reasons(self, project: str) -> dict[str, str]:
        """Yanked version -> reason, for one project. A damaged file keeps the last yanks read
        (pages must not start offering a yanked version); it is reported in the server log."""
        return dict(self._current().get(canonicalize_name(project), {}))

    def every_reason(self) -> dict[str, str]:
        """``"<project> <version>"`` -> reason, for every project (what a page listing all of them shows)."""
        return {f"{project} {version}": reason for project, versions in self._current().items()
                for version, reason in versions.items()}

    def _current(self) -> dict[str, dict[str, str]]:
        with self._lock:
            try:
                self._refresh()
            except DamagedYankFile as exc:
                _log.warning("index: %s", exc)
            return self._yanked

    def set(self, project: str, version: str, reason: str | None) -> str | None:
        """Yank ``version`` with ``reason``, or unyank it when ``reason`` is None.
        Returns the reason it was yanked with before (None: it was not yanked)."""
        return self._update(project, version, lambda before: reason)

    def yank_keeping_reason(self, project: str, version: str) -> str | None:
        """Yank ``version`` without a new reason: one already yanked keeps its reason (a first
        yank records ""). Returns the reason it was yanked with before (None: it was not yanked)."""
        return self._update(project, version, lambda before: "" if before is None else before)

    def _update(self, project: str, version: str, reason_after: t.Callable[[str | None], str | None]) -> str | None:
        project, version = canonicalize_name(project), canonical_version(version)
        with self._lock:
            self._refresh()
            versions = dict(self._yanked.get(project, {}))
            before = versions.get(version)
            after = reason_after(before)
            if after == before:
                return before
            if after is None:
                versions.pop(version, None)
            else:
                versions[version] = after
            updated = {**self._yanked, project: versions}
            if not versions:
                del updated[project]
            self._write(updated)
            self._yanked, self._seen = updated, None
            return before

    def _write(self, content: dict[str, dict[str, str]]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_name(f".{self._path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path)
