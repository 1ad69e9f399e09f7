"""make credential: the admin's command for the local index's credentials (index/access.py).

``NAME= PACKAGES= ROLE=`` creates one and prints its secret once (the last line ``NAME:SECRET``);
``REVOKE=NAME`` revokes one (refused on its next request, in every worker); ``ASSIGN=PACKAGE NAME=``
gives a package to that credential's scope; ``LIST=1`` lists them. It works on the index's state
folder (INDEX_STATE, default index/.state/port-<INDEX_PORT>), running or not: who can open that
folder (owner-only) is the admin, named in the audit log by the admin credential's name.
"""

from __future__ import annotations

import argparse

from index import credentials
from index.access import ROLES, AccessError, EVERY, adopt_htpasswd, assign, create, listing, revoke
from index.audit import AuditLog
from index.settings import INDEX_READER, INDEX_USER
from index.statedb import StateDB, StateError
from pipeline.commands.common import settings
from pipeline.errors import ConfigError

LOCAL = "local"  # the audit log's client address of a change made on the state folder itself


def open_state(args: argparse.Namespace) -> tuple[StateDB, str]:
    """The state folder's records, its credentials made or adopted first; the admin's name."""
    index = settings(args)
    if index.external_url:
        raise ConfigError(f"make {args.command} works on the local index's state folder; INDEX_URL={index.url} is "
                          "an index this project does not run: manage its users there")
    admin = credentials.ensure(index.state_dir, INDEX_USER, INDEX_READER)
    db = StateDB(index.state_dir)
    adopt_htpasswd(db, index.state_dir / credentials.HTPASSWD_FILE, INDEX_READER)
    return db, admin.username


def main(args: argparse.Namespace) -> int:
    try:
        db, admin = open_state(args)
        audit = AuditLog(db)
        if args.list:
            for name, role, scope, owns in listing(db):
                print(f"{name}\t{role}\t{scope}" + (f"\towns {owns}" if owns else ""))
            return 0
        if args.revoke:
            gone = revoke(db, args.revoke)
            audit.append(admin, LOCAL, "credential-revoked", detail={"name": gone.name, "role": gone.role,
                                                                     "packages": gone.scope})
            print(f"revoked {gone.name} ({gone.role} on {gone.scope}): the index refuses it from its next request")
            return 0
        if args.assign:
            if not args.name:
                raise ConfigError("make credential ASSIGN=PACKAGE needs NAME=<credential> whose scope gets it, "
                                  "e.g. make credential ASSIGN=churn-model NAME=ci-churn")
            package = assign(db, args.assign, args.name)
            audit.append(admin, LOCAL, "assign", package, detail={"name": args.name})
            print(f"{package} now belongs to the scope of {args.name}")
            return 0
        if not args.name or not args.role or (not args.packages and args.role != "read"):
            raise ConfigError("make credential needs NAME= PACKAGES= ROLE= (e.g. make credential NAME=ci-churn "
                              f"PACKAGES=churn-model ROLE=upload; roles {', '.join(ROLES[:-1])}), or REVOKE=NAME, "
                              "ASSIGN=PACKAGE NAME=, LIST=1")
        secret = create(db, args.name, args.packages or EVERY, args.role)
        scope = (args.packages or EVERY).strip()
        audit.append(admin, LOCAL, "credential-created", detail={"name": args.name, "role": args.role,
                                                                 "packages": scope})
    except (AccessError, StateError) as exc:
        raise ConfigError(str(exc)) from None
    index = settings(args)
    print(f"created {args.name}: {args.role} on {scope} (each with its -onnx and -data twins)")
    print("the secret is shown once, on the last line (NAME:SECRET); keep it owner-only, e.g. in ~/.netrc (chmod 600):")
    print(f"  machine {index.host} login {args.name} password <SECRET>")
    print(f"or for twine: TWINE_USERNAME={args.name} TWINE_PASSWORD=<SECRET>, or username/password in ~/.pypirc")
    print(f"{args.name}:{secret}")
    return 0
