"""make version: print the next version."""

from __future__ import annotations

import argparse
import sys

from index.control import healthy
from pipeline.commands.common import settings
from pipeline.config import MODELS_DIR, IndexSettings, load_dataset_config
from pipeline.indexes.connect import index_client
from pipeline.steps import planning, release, versioning


def next_version(args: argparse.Namespace) -> str:
    """VERSION= if given, else what make release would publish next: from the changes when the index
    runs and models are trained, else the bump (patch by default) of the highest known version."""
    tag = versioning.canonical_tag(args.data or load_dataset_config().tag)  # checked even with VERSION=
    return getattr(args, "version", None) or _computed(settings(args), args.bump, tag)


def _computed(index: IndexSettings, bump: str | None, tag: str) -> str:
    recorded = release.recorded_version()
    if not healthy(index.url):
        print(f"(the index at {index.url} is not running: computed from the repo's record only)", file=sys.stderr)
        return versioning.next_version([], recorded, bump or "patch", tag)
    client = index_client(index)
    if not any(MODELS_DIR.glob("*/metadata.json")):
        return versioning.next_version(client.versions(), recorded, bump or "patch", tag)
    return planning.plan(client, recorded, bump, tag, force=False, allow_unchanged=True).version


def main(args: argparse.Namespace) -> int:
    print(next_version(args))
    return 0
