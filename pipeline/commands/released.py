"""make released: the version this clone's last release printed, from its record
(src/<import name>/version.py) and that release's hash-locked requirement in releases/."""

from __future__ import annotations

import argparse

from pipeline.config import REPO, VERSION_FILE
from pipeline.errors import VersionError
from pipeline.steps.release_records import lock_file
from pipeline.steps.versioning import read_recorded


def main(args: argparse.Namespace) -> int:
    recorded = read_recorded(VERSION_FILE.read_text(encoding="utf-8")) if VERSION_FILE.is_file() else None
    if recorded is None or not lock_file(recorded).is_file():
        raise VersionError(f"this clone has released nothing yet ({VERSION_FILE.relative_to(REPO)} records "
                           f"{recorded or 'no version'}, releases/ has no {lock_file(str(recorded)).name}); run make release first")
    print(recorded)
    return 0
