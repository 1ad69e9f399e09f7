"""make released: the version this clone's last release printed, from its record
(src/<import name>/version.py) and that release's hash-locked requirement in releases/; never a
yanked one: then the newest release of this clone that is not, with the yanked one named on
stderr (stdout stays the bare version ``V=$(make -s released)`` captures)."""

from __future__ import annotations

import argparse
import sys

from pipeline.commands.common import settings
from pipeline.config import REPO, VERSION_FILE
from pipeline.errors import VersionError
from pipeline.indexes.connect import index_client
from pipeline.steps.release_records import lock_file
from pipeline.steps.versioning import read_recorded
from pipeline.views import pins


def main(args: argparse.Namespace) -> int:
    recorded = read_recorded(VERSION_FILE.read_text(encoding="utf-8")) if VERSION_FILE.is_file() else None
    if recorded is None or not lock_file(recorded).is_file():
        raise VersionError(f"this clone has released nothing yet ({VERSION_FILE.relative_to(REPO)} records "
                           f"{recorded or 'no version'}, releases/ has no {lock_file(str(recorded)).name}); run make release first")
    yanks = pins.ask(index_client(settings(args)))
    if yanks.problem:
        print(f"warning: {yanks.problem}; printed {recorded}, this clone's last release, unchecked", file=sys.stderr)
    version, note = pins.last_release(recorded, yanks, pins.releases())
    if note:
        print(f"warning: {note}", file=sys.stderr)
    print(version)
    return 0
