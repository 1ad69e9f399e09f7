"""make rename: give the package another name (dataset.toml, src/<import name>/, pyproject.toml) and,
with DESCRIPTION= or when asked on a terminal, its description."""

from __future__ import annotations

import argparse
import sys

from pipeline.config import DATASET_CONFIG, PACKAGE, REPO
from pipeline.package.package_name import check, configured_description
from pipeline.package.rename import rename


def main(args: argparse.Namespace) -> int:
    description = args.description
    if description is None and args.name and sys.stdin.isatty() and check(args.name, "NAME", "NAME={}") != PACKAGE:
        current = configured_description(DATASET_CONFIG)
        description = input(f"a one-line description of {args.name} (Enter keeps {current!r}): ").strip() or None
    print(rename(REPO, PACKAGE, args.name, description))
    return 0
