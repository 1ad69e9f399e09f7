"""make channels: each channel's promotions (number, version, when, who, commit) and its URL."""

from __future__ import annotations

import argparse

from pipeline.commands.common import settings
from pipeline.indexes.connect import index_client
from pipeline.views import channels


def main(args: argparse.Namespace) -> int:
    client = index_client(settings(args))
    print(channels.history_table(channels.history(client), client))
    return 0
