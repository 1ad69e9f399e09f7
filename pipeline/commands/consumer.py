"""make consumer: what a consumer pastes for CLIENT= (index settings, the exact pin, install, lock and
rollback commands, or a channel to follow), from the settings and this clone's record; the index is
asked only which versions are yanked, so that neither the pin nor the rollback is a yanked version
without a note (a comment above the recipe) that says so."""

from __future__ import annotations

import argparse
import sys

from index.credentials import READER_FILE
from pipeline.commands.common import settings
from pipeline.config import INDEX_READER, PACKAGE, REPO, VERSION_FILE
from pipeline.indexes.base import IndexClient
from pipeline.indexes.connect import index_client
from pipeline.steps.release_records import lock_file
from pipeline.steps.versioning import parse, read_recorded
from pipeline.views import consumers, pins
from pipeline.views.channels import check_channel


def main(args: argparse.Namespace) -> int:
    consumers.check_client(args.client)
    chosen = settings(args)
    channel = check_channel(args.channel) if args.channel else None
    version = args.version
    if not version and VERSION_FILE.is_file():
        recorded = read_recorded(VERSION_FILE.read_text(encoding="utf-8"))
        version = recorded if recorded and lock_file(recorded).is_file() else None
    if version:
        version = str(parse(version))
    rollback, notes = args.rollback, []
    if channel:
        index_client(chosen).check_channel(channel)  # no recipe for a channel that serves bytes nobody promoted
    if version and not channel:
        version, rollback, notes = _checked(index_client(chosen), version, bool(args.version), rollback)
    where = consumers.target(PACKAGE, chosen.simple_url, version, rollback, channel,
                             private=chosen.auth == "read", reader=INDEX_READER,
                             reader_file=_shown(chosen.state_dir / READER_FILE),
                             channel_url=index_client(chosen).channel_url(channel) if channel else None)
    print("".join(f"# note: {note}\n" for note in notes) + ("\n" if notes else "")
          + consumers.recipe(args.client, where).render(), end="")
    return 0


def _checked(client: IndexClient, version: str, asked: bool, rollback: str | None) -> tuple[str, str | None, list[str]]:
    """The pin and the rollback, yanked ones passed over (this clone's last release, the default
    rollback) or noted (asked for by VERSION= or ROLLBACK=); the notes."""
    yanks = pins.ask(client)
    if yanks.problem:
        print(f"warning: {yanks.problem}; the pin and the rollback are unchecked", file=sys.stderr)
    released = pins.releases()
    notes = []
    if asked:
        notes.append(pins.yanked_note(version, yanks, "VERSION="))
    else:
        version, passed_over = pins.last_release(version, yanks, released)
        notes.append(passed_over)
    if rollback:
        notes.append(pins.yanked_note(rollback, yanks, "ROLLBACK="))
    else:
        rollback, passed = pins.rollback(version, yanks, released)
        notes += passed
    return version, rollback, [note for note in notes if note]


def _shown(path) -> str:
    """A path in this clone as the README shows it (relative), any other as it is."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
