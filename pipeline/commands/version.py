"""make version: print the next version."""

from __future__ import annotations

import argparse
import sys

from index.control import healthy
from pipeline.commands.common import settings
from pipeline.config import MODELS_DIR, IndexSettings, load_dataset_config
from pipeline.indexes.connect import index_client
from pipeline.steps import planning, release, used_numbers, versioning


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
        served, used = client.versions(), used_numbers.used(client)
        version = versioning.next_version([*served, *used], recorded, bump or "patch", tag)
        skipped = used_numbers.skipped(versioning.next_version(served, recorded, bump or "patch", tag), version, used)
    else:
        plan = planning.plan(client, recorded, bump, tag, force=False, allow_unchanged=True)
        version, skipped = plan.version, plan.skipped
    if skipped:
        print(skipped, file=sys.stderr)
    return version


def main(args: argparse.Namespace) -> int:
    print(next_version(args))
    return 0
