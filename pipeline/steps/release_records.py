"""What this clone recorded at release: the sha256 of each file it published.

``make release`` writes ``releases/<package name>-<version>.txt``, a hash-locked requirement with
the sha256 of the wheel and the sdist, and the team commits it. The index cannot write
these records, so they are what decides whether a published wheel may be unpickled
(the gate's rescoring): a version this clone never recorded, or whose served bytes are
not the recorded ones, is never loaded.

Only the history of the commit being released counts (``HEAD`` and its ancestors): a record on
another branch, a remote-tracking ref, a tag or the stash is anyone's (a branch pushed to the team
remote and never merged arrives with a plain ``git fetch``) and authorises nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import PACKAGE, RELEASES_DIR
from pipeline.steps.provenance import git_output

_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})\b")
HISTORY_DEPTH = 50  # commits of HEAD's history that touched the lock file, newest first, searched for one that holds it


@dataclass(frozen=True)
class Record:
    sha256: frozenset[str]  # of the wheel and the sdist
    where: str  # the lock file, and the commit when it came from git history


def lock_file(version: str, releases_dir: Path = RELEASES_DIR, package: str = PACKAGE) -> Path:
    """The record of ``version``: releases/<package name>-<version>.txt (``package``: the data package's too)."""
    return releases_dir / f"{package}-{version}.txt"


def recorded(version: str, releases_dir: Path = RELEASES_DIR, package: str = PACKAGE) -> Record | None:
    """The sha256 this clone recorded when it released ``version`` (normalised): from the lock
    file in ``releases_dir``, else from that file in a commit of HEAD's history (never another ref's)."""
    lock = lock_file(version, releases_dir, package)
    shown = f"{releases_dir.name}/{lock.name}"
    try:
        found = frozenset(_HASH.findall(lock.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        found = frozenset()
    if found:
        return Record(found, shown)
    repo = releases_dir.parent
    commits = git_output("log", "HEAD", f"-{HISTORY_DEPTH}", "--format=%H", "--", shown, cwd=repo) or ""
    for commit in commits.split():
        found = frozenset(_HASH.findall(git_output("show", f"{commit}:./{shown}", cwd=repo) or ""))
        if found:
            return Record(found, f"{shown} in commit {commit[:12]}")
    return None
