"""make lock: print the hash-locked requirement of a published version."""

from __future__ import annotations

import argparse

from pipeline.commands.common import require_version, settings
from pipeline.indexes.connect import index_client
from pipeline.steps import versioning
from pipeline.steps.publish import lock_text


def main(args: argparse.Namespace) -> int:
    require_version(args, "1.1.1+titanic)")
    index = settings(args)
    version = str(versioning.parse(args.version))
    print(lock_text(index_client(index), version), end="")
    return 0
