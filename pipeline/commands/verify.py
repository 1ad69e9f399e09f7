"""make verify: rebuild a published version from this checkout and compare its wheel with the index's."""

from __future__ import annotations

import argparse

from pipeline.commands.common import require_version, settings
from pipeline.steps import release, versioning


def main(args: argparse.Namespace) -> int:
    require_version(args, "1.1.1+titanic)")
    index = settings(args)
    version = str(versioning.parse(args.version))
    return 0 if release.reproduce(index, version, args.data_file) else 1
