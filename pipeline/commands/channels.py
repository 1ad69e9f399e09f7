"""make channels: each channel's promotions: channel version -> model version, date, commit."""

from __future__ import annotations

import argparse

from pipeline.commands.common import settings
from pipeline.indexes.connect import index_client
from pipeline.views import channels


def main(args: argparse.Namespace) -> int:
    print(channels.history_table(channels.history(index_client(settings(args)))))
    return 0
