"""make index-stop: stop the local index."""

from __future__ import annotations

import argparse

from index import control
from pipeline.commands.common import settings


def main(args: argparse.Namespace) -> int:
    print("index: stopped" if control.stop(settings(args)) else "index: was not running")
    return 0
