"""Numbers the index has seen used: a version number is published once, whatever became of it.

The index keeps, beside what it serves, every version of the package it stored a file of and
does not serve (index/numbers.py; on devpi, the registered versions without files): staged
(uploaded by a release that has not sealed it) and taken back (its number burned). A release
numbers past all of them and says why, and takes back an abandoned one (staged, its last upload
older than the index's bound: a release that died in this clone or another) before it plans.
"""

from __future__ import annotations

from pipeline.config import DATA_PACKAGE, PACKAGE
from pipeline.errors import PackageIndexError
from pipeline.indexes.base import IndexClient, UsedVersion
from pipeline.steps.versioning import parse


def used(client: IndexClient) -> dict[str, UsedVersion]:
    """Version -> why its number is used, for the package and its siblings released with it (not the
    data package, whose versions follow the data). A staged version is reported before a taken-back one."""
    found: dict[str, UsedVersion] = {}
    for entry in sorted(client.used_versions(), key=lambda u: u.state != "staged"):
        if entry.project != DATA_PACKAGE:
            found.setdefault(entry.version, entry)
    return found


def skipped(wanted: str, chosen: str, numbers: dict[str, UsedVersion]) -> str | None:
    """The line saying why ``chosen`` is not ``wanted`` (the next number had the used ones not been there).

    >>> from pipeline.indexes.base import UsedVersion
    >>> gone = {"1.1.3+titanic": UsedVersion("mymodel", "1.1.3+titanic", "taken back", "2026-12-07T10:00:00Z")}
    >>> skipped("1.1.3+titanic", "1.1.4+titanic", gone)
    '1.1.3+titanic was used before (taken back on 2026-12-07T10:00:00Z): releasing 1.1.4+titanic'
    >>> skipped("1.1.3+titanic", "1.1.3+titanic", gone) is None
    True
    """
    if wanted == chosen:
        return None
    passed = sorted((u for u in numbers.values() if parse(wanted).release <= parse(u.version).release
                     < parse(chosen).release), key=lambda u: parse(u.version))
    if not passed:
        return None
    reasons = [f"{u.version} ({u.describe()})" for u in passed]
    subject = (f"{passed[0].version} was used before ({passed[0].describe()})" if len(passed) == 1
               else f"{', '.join(reasons)} were used before")
    return f"{subject}: releasing {chosen}"


def _staged(client: IndexClient) -> list[tuple[str, str, list[UsedVersion]]]:
    """(version, its files, its records) of every version uploaded and not sealed, oldest number first."""
    staged: dict[str, list[UsedVersion]] = {}
    for entry in client.used_versions():
        if entry.state == "staged" and entry.project != DATA_PACKAGE:
            staged.setdefault(entry.version, []).append(entry)
    return [(version, ", ".join(sorted(name for entry in entries for name in entry.files)) or "no file left", entries)
            for version, entries in sorted(staged.items(), key=lambda item: parse(item[0]))]


def take_back_abandoned(client: IndexClient, say=print) -> None:
    """Take back every version a release left staged and never sealed, once older than the index's bound;
    one line each. A younger one (a release in progress elsewhere) is left alone, and said so."""
    for version, files, entries in _staged(client):
        ago = min(entries, key=lambda entry: entry.age_seconds).ago
        if not all(entry.abandoned for entry in entries):
            say(f"{PACKAGE} {version} ({files}), uploaded {ago}, is not sealed yet (a release in progress "
                "elsewhere): left alone; this release takes another number")
            continue
        try:
            client.take_back_abandoned(version)
        except PackageIndexError as exc:
            say(f"abandoned {PACKAGE} {version} ({files}) was not taken back: {exc}")
            continue
        say(f"abandoned: {PACKAGE} {version} ({files}), uploaded {ago} and never sealed (a release that died, here "
            "or in another clone): taken back; its number is not used again")


def report(client: IndexClient) -> list[str]:
    """``make versions``: the versions uploaded and not sealed, abandoned or in progress, one line each."""
    lines = []
    for version, files, entries in _staged(client):
        ago = min(entries, key=lambda entry: entry.age_seconds).ago
        if all(entry.abandoned for entry in entries):
            lines.append(f"abandoned: {PACKAGE} {version} ({files}), uploaded {ago} and never sealed: served "
                         "nowhere; the next make release takes it back")
        else:
            lines.append(f"in progress: {PACKAGE} {version} ({files}), uploaded {ago}: served nowhere until its "
                         "release seals it")
    return lines
