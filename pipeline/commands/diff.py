"""make diff: what changed between two published versions, and the bump it requires (read-only)."""

from __future__ import annotations

import argparse

from pipeline.commands.common import require_known_format, settings
from pipeline.indexes.connect import index_client
from pipeline.views import registry


def main(args: argparse.Namespace) -> int:
    require_known_format()
    print(registry.diff_output(index_client(settings(args)), args.a, args.b, args.json))
    return 0
