"""make index: start the local index (nothing when it runs). The index commands import no
scikit-learn (about 1.2 s of every call before)."""

from __future__ import annotations

import argparse

from index import control
from pipeline.commands.common import settings


def main(args: argparse.Namespace) -> int:
    index = settings(args)
    print(control.start(index).describe())
    print(f"credentials (owner-only): uploads {index.state_dir}/credentials.json, "
          f"read-only for consumers {index.state_dir}/reader.json")
    return 0
