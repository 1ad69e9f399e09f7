"""What several commands share: the index settings from the command line, and their checks of it."""

from __future__ import annotations

import argparse

from pipeline.config import IndexSettings, env, index_settings
from pipeline.errors import ConfigError


def settings(args: argparse.Namespace) -> IndexSettings:
    return index_settings(args.port, args.dir, args.auth)


def require_version(args: argparse.Namespace, example: str) -> None:
    """``example``: the rest of the sample command line after VERSION=..., e.g. ``1.1.1+titanic)``."""
    if not args.version:
        raise ConfigError(f"make {args.command} needs VERSION=X.Y.Z+tag (e.g. make {args.command} VERSION={example}")


def require_known_format() -> None:
    if env("FORMAT", "text") not in ("text", "json"):
        raise ConfigError(f"FORMAT={env('FORMAT')!r} is not text or json; use FORMAT=json for scripts")
