"""make promote: publish the next <package>-<channel> version, requiring exactly VERSION=
(a channel is a package, so any index the pipeline uploads to works)."""

from __future__ import annotations

import argparse

from pipeline.commands.common import settings
from pipeline.config import PACKAGE
from pipeline.indexes.connect import index_client
from pipeline.views import channels


def main(args: argparse.Namespace) -> int:
    client = index_client(settings(args))
    promotion = channels.promote(client, args.version, args.channel)
    name = channels.channel_project(promotion.channel)
    print(f"promoted {PACKAGE} {promotion.model_version} to {promotion.channel}: {name} {promotion.number}\n"
          f"  pip install --index-url {client.settings.simple_url} {name}      # follows the channel\n"
          f"  pip install --index-url {client.settings.simple_url} {name}=={promotion.number}   # exactly this promotion")
    return 0
