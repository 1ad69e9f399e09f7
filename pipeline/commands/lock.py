"""make lock: print the hash-locked requirement of a published version (ONNX=1: of its <name>-onnx twin)."""

from __future__ import annotations

import argparse

from pipeline.commands.common import require_version, settings
from pipeline.config import PACKAGE, env
from pipeline.indexes.connect import index_client
from pipeline.package.onnx_names import TWIN
from pipeline.steps import versioning
from pipeline.steps.publish import lock_text


def main(args: argparse.Namespace) -> int:
    require_version(args, "1.1.1+titanic)")
    index = settings(args)
    version = str(versioning.parse(args.version))
    onnx = env("ONNX", "0") not in ("0", "")
    print(lock_text(index_client(index), version, TWIN if onnx else PACKAGE), end="")
    return 0
