"""make versions: the published versions, newest first (read-only: no scikit-learn import)."""

from __future__ import annotations

import argparse

from pipeline.commands.common import require_known_format, settings
from pipeline.indexes.connect import index_client
from pipeline.views import registry


def main(args: argparse.Namespace) -> int:
    require_known_format()
    print(registry.versions_output(index_client(settings(args)), args.json))
    return 0
