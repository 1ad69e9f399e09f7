"""make rename: give the package another name (dataset.toml, src/<import name>/, pyproject.toml)."""

from __future__ import annotations

import argparse

from pipeline.config import PACKAGE, REPO
from pipeline.package.rename import rename


def main(args: argparse.Namespace) -> int:
    print(rename(REPO, PACKAGE, args.name))
    return 0
