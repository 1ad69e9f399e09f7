"""The versions ``make released`` and ``make consumer`` hand out: never a yanked one without saying so.

Both pin this clone's last release (``src/<import name>/version.py``, with its record in
``releases/``) and roll back to one it released before. A yank is the team's decision that
consumers should not get a version, and the index keeps it (PEP 592), so both ask the index: a
yanked release is passed over for the newest release of this clone that is not yanked, and named
with its reason. When the index does not answer, that is said, and the records alone decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from pipeline.config import PACKAGE, RELEASES_DIR
from pipeline.errors import PackageIndexError, VersionError
from pipeline.indexes.base import IndexClient


@dataclass(frozen=True)
class Yanks:
    """What the index says is yanked: version -> reason; ``problem``: why it could not be asked."""

    reasons: dict[str, str]
    problem: str | None = None

    def reason(self, version: str) -> str | None:
        """Why ``version`` is yanked; None when it is not (or the index could not be asked)."""
        found = self.reasons.get(_canonical(version))
        return None if found is None else found or "no reason given"


def ask(client: IndexClient) -> Yanks:
    try:
        return Yanks(client.yanked())
    except PackageIndexError as exc:
        return Yanks({}, f"could not ask {client.url} which versions are yanked ({exc})")


def releases(releases_dir: Path = RELEASES_DIR, package: str = PACKAGE) -> list[str]:
    """The versions this clone released (releases/<package>-<version>.txt), newest first."""
    found = set()
    for lock in releases_dir.glob(f"{package}-*.txt"):
        try:
            found.add(Version(lock.name.removeprefix(f"{package}-").removesuffix(".txt")))
        except InvalidVersion:
            continue
    return [str(version) for version in sorted(found, reverse=True)]


def last_release(recorded: str, yanks: Yanks, released: list[str]) -> tuple[str, str | None]:
    """The version to hand out for this clone's last release ``recorded``, and the note that names
    a yanked one (None: nothing to say). VersionError when every release of this clone is yanked."""
    reason = yanks.reason(recorded)
    if reason is None:
        return recorded, None
    instead = next((v for v in released if yanks.reason(v) is None and Version(v) < Version(recorded)), None)
    if instead is None:
        raise VersionError(f"{PACKAGE} {recorded}, this clone's last release, is yanked ({reason}), and so is every "
                           f"release of this clone before it; release a fixed version (make release), or make unyank "
                           f"VERSION={recorded} to hand it out again")
    return instead, (f"{PACKAGE} {recorded}, this clone's last release, is yanked ({reason}): {instead} is the "
                     f"newest release of this clone that is not (make unyank VERSION={recorded} hands it out again)")


def rollback(version: str, yanks: Yanks, released: list[str]) -> tuple[str | None, list[str]]:
    """The newest release of this clone below ``version`` that is not yanked (None: there is none), and
    a note for each yanked one passed over."""
    notes = []
    for candidate in (v for v in released if Version(v) < Version(version)):
        reason = yanks.reason(candidate)
        if reason is None:
            return candidate, notes
        notes.append(f"the rollback passes over {PACKAGE} {candidate}: yanked ({reason})")
    return None, notes


def yanked_note(version: str, yanks: Yanks, role: str) -> str | None:
    """A note when ``version``, asked for by name (``role``: VERSION= or ROLLBACK=), is yanked."""
    reason = yanks.reason(version)
    return None if reason is None else (f"{role}{version} is yanked ({reason}): an exact pin still installs it "
                                        "(pip and uv warn), a range skips it")


def _canonical(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        return version
