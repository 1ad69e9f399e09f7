"""make build: build the next version's sdist and wheel into dist/."""

from __future__ import annotations

import argparse

from pipeline.commands.version import next_version
from pipeline.config import DIST_DIR
from pipeline.steps.build import build


def main(args: argparse.Namespace) -> int:
    built = build(next_version(args), DIST_DIR)
    twin = f" and {built.twin.name}" if built.twin else ""
    print(f"built {built.sdist.name} and {built.wheel.name}{twin} in {DIST_DIR}")
    return 0
