"""make index: start the local index (nothing when it runs). The index commands import no
scikit-learn (about 1.2 s of every call before)."""

from __future__ import annotations

import argparse

from index import control
from pipeline.commands.common import settings
from pipeline.config import PORT_FILE, REPO, remembered_port


def main(args: argparse.Namespace) -> int:
    index = settings(args)
    print(control.start(index).describe())
    if remembered_port() == str(index.port) and not index.external_url:
        print(f"this clone's make targets use it while INDEX_PORT is unset (the port is kept in "
              f"{PORT_FILE.relative_to(REPO)}); INDEX_PORT=... still chooses another")
    print(f"credentials (owner-only): uploads {index.state_dir}/credentials.json, "
          f"read-only for consumers {index.state_dir}/reader.json")
    return 0
