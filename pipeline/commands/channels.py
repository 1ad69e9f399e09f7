"""make channels: each channel's newest promotions (number, version, when, who, commit, note) and its
URL; PAGE=2 the ones before, ALL=1 every one, CHANNEL= one channel."""

from __future__ import annotations

import argparse

from pipeline.commands.common import settings
from pipeline.indexes.connect import index_client
from pipeline.views import channels


def main(args: argparse.Namespace) -> int:
    client = index_client(settings(args))
    page = channels.page_number(args.page)
    print(channels.history_table(channels.history(client, args.channel, page, args.all), client, page))
    return 0
