"""Channels: ``make promote VERSION=... CHANNEL=prod`` makes VERSION the one version of the
model package (and of its ``<package>-*`` siblings) that the channel's index view serves,
``<index>/channels/prod/simple/`` (index/channel_routes.py; on devpi the index
``<user>/prod``, pipeline/indexes/devpi.py). A client pointed at that URL with an unpinned or
ranged requirement follows the channel, a lock-based one on its next update: a rollback is
the promotion of an older version. ``make channels`` prints each channel's newest promotions
(``PAGE=2`` the ones before, ``ALL=1`` every one, ``CHANNEL=`` one channel): number, version,
when, who (the credential the index authenticated) and the commit the version was built from,
as the index recorded them, with the promoter's ``NOTE=``.
"""

from __future__ import annotations

import re

from index.channels import Promotion
from pipeline.package.own_package import published
from pipeline.views import registry
from pipeline.config import PACKAGE
from pipeline.errors import ConfigError, PackageIndexError, VersionError
from pipeline.indexes.base import CHANNEL_PAGE, Histories, IndexClient
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


def promote(client: IndexClient, version: str | None, channel: str | None, note: str | None = None) -> Promotion:
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
    built_from = "unknown" if client.records_promotions else _built_from(client, version)
    return client.promote(channel, version, note or "", built_from=built_from)


def _built_from(client: IndexClient, version: str) -> str:
    """The commit ``version``'s wheel records (read from its JSON files, never unpickled), for an index that
    keeps no record of promotions itself (devpi)."""
    try:
        return published.built_from(registry.published(client, version).snapshot.models)
    except PackageIndexError:
        return "unknown (its wheel cannot be read)"


def page_number(value: str | None) -> int:
    """PAGE= as a page number (1, the newest promotions, when unset).

    >>> page_number(None), page_number("2")
    (1, 2)
    """
    if value is None:
        return 1
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ConfigError(f"PAGE={value!r} is not a page; pages count from 1 (the newest promotions), e.g. PAGE=2")
    return int(value)


def history(client: IndexClient, channel: str | None = None, page: int = 1, every: bool = False) -> Histories:
    """Each channel's promotions as the index recorded them: the newest page, or ``page``, or ``every`` one."""
    if channel:
        check_channel(channel)
    return client.channel_histories(channel, page, None if every else CHANNEL_PAGE)


def history_table(histories: Histories, client: IndexClient | None = None, page: int = 1) -> str:
    if not any(histories.promotions.values()):
        if page > 1 and any(histories.totals.values()):
            return f"no promotions on page {page}: " + ", ".join(
                f"{name} has {total}" for name, total in sorted(histories.totals.items()))
        return "no channels yet: make promote VERSION=X.Y.Z+tag CHANNEL=prod"
    rows = [("channel", "#", "version", "promoted", "by", "built from", "note")]
    rows += [(channel, str(p.number), p.version, p.when, p.user, p.commit, p.note or "-")
             for channel, promotions in sorted(histories.promotions.items()) for p in promotions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    for channel, promotions in sorted(histories.promotions.items()):
        older = min((p.number for p in promotions), default=1) - 1
        if older > 0:
            table.append(f"{channel}: {older:,} older promotions: make channels CHANNEL={channel} PAGE={page + 1} "
                         f"(or ALL=1)")
    if client is not None:
        table += ["", "follow a channel (each serves only its promoted version of " + PACKAGE + "):"]
        table += [f"  {channel}: pip install --index-url {client.channel_url(channel)} {PACKAGE}"
                  for channel in sorted(histories.promotions) if histories.promotions[channel]]
    return "\n".join(table)
