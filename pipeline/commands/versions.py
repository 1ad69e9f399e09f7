"""make versions: the published versions, newest first (read-only: no scikit-learn import); then one
line for each version uploaded and never sealed, abandoned or in progress (stderr with FORMAT=json)."""

from __future__ import annotations

import argparse
import sys

from pipeline.commands.common import require_known_format, settings
from pipeline.indexes.connect import index_client
from pipeline.steps import used_numbers
from pipeline.views import registry


def main(args: argparse.Namespace) -> int:
    require_known_format()
    client = index_client(settings(args))
    print(registry.versions_output(client, args.json))
    unsealed = used_numbers.report(client)
    if unsealed:
        print("\n".join(unsealed), file=sys.stderr if args.json else sys.stdout)
    return 0
