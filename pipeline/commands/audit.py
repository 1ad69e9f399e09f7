"""make audit: the local index's audit log (index/audit.py), oldest first, and whether its hash chain
holds; PACKAGE= shows one package's entries (its twins included). A broken chain is an error naming
the first entry that no longer matches: edited, or the one before it taken out."""

from __future__ import annotations

import argparse
import json

from index.audit import AuditLog, Entry
from index.statedb import StateError
from pipeline.commands.credential import open_state
from pipeline.errors import AuditChainBroken, ConfigError


def line(entry: Entry) -> str:
    detail = " ".join(f"{key}={json.dumps(value) if isinstance(value, str) and ' ' in value else value}"
                      for key, value in sorted(entry.detail.items()) if value not in (None, ""))
    what = " ".join(part for part in (entry.project, entry.version) if part)
    return "  ".join(part for part in (f"#{entry.seq}", entry.at, entry.who, entry.address, entry.action, what, detail)
                     if part)


def main(args: argparse.Namespace) -> int:
    try:
        db, _ = open_state(args)
        log = AuditLog(db)
        entries = log.entries(args.package)
        checked, broken = log.verify()
    except StateError as exc:
        raise ConfigError(str(exc)) from None
    for entry in entries:
        print(line(entry))
    if broken is not None:
        raise AuditChainBroken(f"the audit log's hash chain breaks at entry #{broken} of {checked}: that entry was edited, "
                          "or the one before it removed; restore the state folder's index.sqlite3 from a backup "
                          "to see what changed")
    newest = log.entries(limit=1)
    print(f"chain intact: {checked} entries" + (f", newest hash {newest[0].hash}" if newest else "")
          + (f"; {len(entries)} of {args.package}" if args.package else ""))
    return 0
