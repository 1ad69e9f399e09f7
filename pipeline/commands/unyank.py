"""make unyank: the version is installable by ranges again."""

from __future__ import annotations

import argparse

from pipeline.commands.common import require_version, settings
from pipeline.commands.yank import set_yanked, warn_if_none_installable
from pipeline.indexes.connect import index_client


def main(args: argparse.Namespace) -> int:
    require_version(args, "1.1.2+titanic)")
    for answer in set_yanked(index_client(settings(args)), args.version, False, None):
        print(f"unyanked {answer['name']} {answer['version']}")
        warn_if_none_installable(answer)
    return 0
