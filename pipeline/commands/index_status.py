"""make index-status: is the local index running, and where."""

from __future__ import annotations

import argparse

from index import control
from pipeline.commands.common import settings


def main(args: argparse.Namespace) -> int:
    print(control.status(settings(args)).describe())
    return 0
