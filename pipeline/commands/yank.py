"""make yank: ranges skip the version, an exact pin still installs it (PEP 592); the index records it."""

from __future__ import annotations

import argparse
import sys

from index.yanks import reason_too_long
from pipeline.commands.common import require_version, settings
from pipeline.errors import PackageIndexError
from pipeline.indexes.base import IndexClient
from pipeline.indexes.connect import index_client
from pipeline.package.onnx_names import TWIN
from pipeline.steps.versioning import parse


def main(args: argparse.Namespace) -> int:
    require_version(args, '1.1.2+titanic REASON="why")')
    problem = reason_too_long(args.reason)
    if problem:  # before any request: the index refuses it too
        raise PackageIndexError(problem)
    for answer in set_yanked(index_client(settings(args)), args.version, True, args.reason):
        print(_outcome(answer, args.reason))
        warn_if_none_installable(answer)
    return 0


def set_yanked(client: IndexClient, version: str, yanking: bool, reason: str | None) -> list[dict]:
    """Yank or unyank ``version``, and its <name>-onnx twin with it when the index has one; the answers."""
    answers = [client.set_yanked(version, yanking, reason)]
    if str(parse(version)) in client.versions(TWIN):
        answers.append(client.set_yanked(version, yanking, reason, project=TWIN))
    return answers


def warn_if_none_installable(answer: dict) -> None:
    if not answer["not_yanked"]:
        print(f"warning: every version of {answer['name']} is now yanked: 'pip install {answer['name']}' finds "
              "none; publish a fixed version or make unyank one", file=sys.stderr)


def _outcome(answer: dict, reason: str | None) -> str:
    """What make yank did: yanked, yanked with a reason that replaces the one recorded, or kept
    as it was (no REASON for a version already yanked)."""
    what, previous = f"{answer['name']} {answer['version']}", answer.get("previous")  # older indexes: no previous
    if previous is not None and reason is None:
        return f"{what} is already yanked: {previous or '(no reason given)'}; kept (REASON=\"...\" replaces the reason)"
    replaced = f" (replaces: {previous or '(no reason given)'})" if previous is not None and previous != reason else ""
    return f"yanked {what}" + (f": {reason}" if reason else "") + replaced
