"""make index-status: is the local index running, and where; and every other index this clone started that runs."""

from __future__ import annotations

import argparse

from index import control
from pipeline.commands.common import settings


def main(args: argparse.Namespace) -> int:
    chosen = settings(args)
    print(control.status(chosen).describe())
    others = [index for index in control.running_here() if index.url != chosen.url]
    for index in others:
        port = index.url.rstrip("/").rsplit(":", 1)[1]
        print(f"also running from this clone: {index.url} (pid {index.pid}); use it with INDEX_PORT={port}")
    return 0
