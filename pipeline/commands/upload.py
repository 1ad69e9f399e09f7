"""make upload: upload a built version from dist/ and verify it."""

from __future__ import annotations

import argparse

from pipeline.commands.common import settings
from pipeline.config import PACKAGE
from pipeline.steps import release
from pipeline.steps.publish import install_instructions


def main(args: argparse.Namespace) -> int:
    index, version, lock = release.upload_from_dist(settings(args), args.version)
    print(f"published {version}; lock: {lock}\n{install_instructions(index, f'{PACKAGE}=={version}')}")
    return 0
