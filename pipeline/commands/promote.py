"""make promote: make VERSION= the one version of the package that CHANNEL='s index view serves
(a rollback: promote an older one); the index records who (the credential), when, the commit the
version was built from, the sha256 of the files the channel serves, and NOTE=."""

from __future__ import annotations

import argparse

from pipeline.commands.common import settings
from pipeline.config import PACKAGE
from pipeline.indexes.connect import index_client
from pipeline.views import channels


def main(args: argparse.Namespace) -> int:
    client = index_client(settings(args))
    promotion = channels.promote(client, args.version, args.channel, args.note)
    numbered = f" (promotion {promotion.number})" if promotion.number else ""  # devpi numbers none
    print(f"promoted {PACKAGE} {promotion.version} to {args.channel}{numbered}\n"
          f"  pip install --index-url {client.channel_url(args.channel)} {PACKAGE}      # follows the channel\n"
          f"  pip install --index-url {client.settings.simple_url} {PACKAGE}=={promotion.version}   # exactly this version")
    return 0
