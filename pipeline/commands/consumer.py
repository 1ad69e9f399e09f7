"""make consumer: what a consumer pastes for CLIENT= (index settings, the exact pin, install, lock and
rollback commands, or a channel to follow), from the settings and this clone's record alone: no
index request."""

from __future__ import annotations

import argparse

from index.credentials import READER_FILE
from pipeline.commands.common import settings
from pipeline.config import INDEX_READER, PACKAGE, RELEASES_DIR, REPO, VERSION_FILE
from pipeline.indexes.connect import index_client
from pipeline.steps.release_records import lock_file
from pipeline.steps.versioning import parse, read_recorded
from pipeline.views import consumers
from pipeline.views.channels import check_channel


def main(args: argparse.Namespace) -> int:
    consumers.check_client(args.client)
    chosen = settings(args)
    version = args.version
    if not version and VERSION_FILE.is_file():
        recorded = read_recorded(VERSION_FILE.read_text(encoding="utf-8"))
        version = recorded if recorded and lock_file(recorded).is_file() else None
    if version:
        version = str(parse(version))
    rollback = args.rollback or (version and consumers.earlier_release(version, RELEASES_DIR, PACKAGE))
    channel = check_channel(args.channel) if args.channel else None
    where = consumers.target(PACKAGE, chosen.simple_url, version, rollback, channel,
                             private=chosen.auth == "read", reader=INDEX_READER,
                             reader_file=_shown(chosen.state_dir / READER_FILE),
                             channel_url=index_client(chosen).channel_url(channel) if channel else None)
    print(consumers.recipe(args.client, where).render(), end="")
    return 0


def _shown(path) -> str:
    """A path in this clone as the README shows it (relative), any other as it is."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
