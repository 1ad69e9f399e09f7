"""Channels: ``make promote VERSION=... CHANNEL=prod`` makes VERSION the one version of the
model package (and of its ``<package>-*`` siblings) that the channel's index view serves,
``<index>/channels/prod/simple/`` (index/channel_routes.py; on devpi the index
``<user>/prod``, pipeline/indexes/devpi.py). A client pointed at that URL with an unpinned or
ranged requirement follows the channel, a lock-based one on its next update: a rollback is
the promotion of an older version. ``make channels`` prints every promotion: number, version,
when, who and the commit, as the index recorded them.
"""

from __future__ import annotations

import getpass
import re
import subprocess

from index.channels import Promotion
from pipeline.views import registry
from pipeline.config import PACKAGE, REPO
from pipeline.errors import ConfigError, VersionError
from pipeline.indexes.base import IndexClient
from pipeline.steps.versioning import parse

_CHANNEL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
CHANNEL_NAME_LIMIT = 64


def canonical_channel(name: str) -> str:
    """The channel name a messy one stands for.

    >>> canonical_channel("Prod_EU"), canonical_channel(" staging.2 ")
    ('prod-eu', 'staging-2')
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:CHANNEL_NAME_LIMIT]


def check_channel(name: str | None) -> str:
    if not name:
        raise ConfigError("make promote needs CHANNEL=<name> (e.g. make promote VERSION=1.1.2+titanic CHANNEL=prod)")
    if not _CHANNEL.fullmatch(name) or len(name) > CHANNEL_NAME_LIMIT:
        suggestion = canonical_channel(name) or "prod"
        raise ConfigError(f"channel {name!r} is not lowercase letters, digits and hyphens (at most "
                          f"{CHANNEL_NAME_LIMIT}); use CHANNEL={suggestion}")
    return name


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _promoter() -> str:
    """Who promotes, as recorded next to the credential: the git identity, else the login name."""
    return _git("config", "user.email") or _git("config", "user.name") or getpass.getuser()


def promote(client: IndexClient, version: str | None, channel: str | None) -> Promotion:
    channel = check_channel(channel)
    if not version:
        raise ConfigError("make promote needs VERSION=X.Y.Z+tag (e.g. make promote VERSION=1.1.2+titanic CHANNEL=prod)")
    version = str(parse(version))
    published = registry.complete_versions(client)
    if version not in published:
        raise VersionError(f"{PACKAGE} {version} is not published on {client.url} (published: "
                           f"{', '.join(published) or 'none'}); pass one of those as VERSION=")
    yanked = client.yanked()
    if version in yanked:
        raise VersionError(f"{PACKAGE} {version} is yanked ({yanked[version] or 'no reason given'}); promote "
                           f"another version, or make unyank VERSION={version} first")
    return client.promote(channel, version, _git("rev-parse", "--short=12", "HEAD") or "unknown", _promoter())


def history(client: IndexClient) -> dict[str, list[Promotion]]:
    """Every channel's promotions, oldest first, as the index recorded them."""
    return client.channel_histories()


def history_table(histories: dict[str, list[Promotion]], client: IndexClient | None = None) -> str:
    if not any(histories.values()):
        return "no channels yet: make promote VERSION=X.Y.Z+tag CHANNEL=prod"
    rows = [("channel", "#", "version", "promoted", "by", "commit")]
    rows += [(channel, str(p.number), p.version, p.when, f"{p.by} ({p.user})", p.commit)
             for channel, promotions in sorted(histories.items()) for p in promotions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if client is not None:
        table += ["", "follow a channel (each serves only its promoted version of " + PACKAGE + "):"]
        table += [f"  {channel}: pip install --index-url {client.channel_url(channel)} {PACKAGE}"
                  for channel in sorted(histories) if histories[channel]]
    return "\n".join(table)
