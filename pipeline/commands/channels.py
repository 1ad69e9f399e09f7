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
    histories = channels.history(client, args.channel, page, args.all)
    for channel, promotions in histories.promotions.items():
        if promotions:
            client.check_channel(channel)  # one that serves bytes nobody promoted fails the listing (devpi)
    print(channels.history_table(histories, client, page))
    return 0
