"""Who may do what on the index: credentials with a role and a scope, and the names teams own.

Each credential (the ``credentials`` table of index/statedb.py) has a name, a bcrypt hash of
its secret (never the secret), a role and a scope:

- ``read``: list, download, metadata, the registry page (GET and HEAD only);
- ``upload``: that, and publish new versions (upload, seal; remove or take back a version not sealed);
- ``maintain``: that, and yank, unyank, promote, take back, remove;
- ``admin``: everything, on every package; one per index (creates and revokes credentials).

A scope is the package names a credential may act on, each with its ``-onnx`` and ``-data``
twins, or ``*`` (every name). The first upload of a name by a non-admin credential claims it
for that credential's scope (the ``owners`` table): from then on only credentials of the same
scope write to it (another team's upload gets 403), whatever their scope lists; the admin may
assign a name to another scope. A state folder from before credentials had roles is upgraded
on first use: its htpasswd users become the admin (the upload credential) and a
read-everything reader, keeping their passwords.

The server checks each write on its route (``guard_writes``), whatever the client. Revoking or
creating a credential bumps ``meta.credentials``; every request looks at the database's change
counter (one pragma) and reloads the credentials, dropping every remembered check, when that
moved: in every worker process serving the state folder, on its next request.
"""

from __future__ import annotations

import secrets
import threading
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from packaging.utils import canonicalize_name

from index.auth import VerifiedPairs
from index.statedb import StateDB

ROLES = ("read", "upload", "maintain", "admin")
EVERY = "*"
TWINS = ("-onnx", "-data")
# What each write needs at least; anything not named here needs admin.
NEEDS = {"upload": "upload", "seal": "upload", "remove": "maintain", "take-back": "maintain",
         "yank": "maintain", "unyank": "maintain", "promote": "maintain"}
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
NAME_LIMIT = 64


class AccessError(Exception):
    """A credential command that cannot be done; the message says why and what to run."""


@dataclass(frozen=True)
class Credential:
    name: str
    role: str
    scope: str  # EVERY, or canonical package names joined by ","

    @property
    def packages(self) -> frozenset[str]:
        return frozenset(self.scope.split(",")) if self.scope != EVERY else frozenset()

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def covers(self, package: str) -> bool:
        return self.scope == EVERY or package in self.packages


def package_of(project: str) -> str:
    """The package a project belongs to: its twins share its scope and owner.

    >>> package_of("Churn_Model-ONNX"), package_of("churn-model-data"), package_of("churn-model")
    ('churn-model', 'churn-model', 'churn-model')
    """
    name = canonicalize_name(project)
    for twin in TWINS:
        if name.endswith(twin) and len(name) > len(twin):
            return name[: -len(twin)]
    return name


def scope_of(packages: str) -> str:
    """The stored form of a PACKAGES= value: ``*``, or sorted canonical package names.

    >>> scope_of("Fraud_Model, churn-model-onnx"), scope_of(" * ")
    ('churn-model,fraud-model', '*')
    """
    names = {package_of(name) for name in packages.replace(" ", ",").split(",") if name.strip()}
    if names == {EVERY} or not names and packages.strip() == EVERY:
        return EVERY
    if not names or EVERY in names:
        raise AccessError(f"PACKAGES={packages!r} names no package; give the package names, comma-separated "
                          "(PACKAGES=churn-model), or PACKAGES='*' for every package")
    return ",".join(sorted(names))


def _load(db: StateDB) -> dict[str, tuple[Credential, bytes]]:
    rows = db.read("SELECT name, hash, role, packages FROM credentials WHERE revoked IS NULL")
    return {name: (Credential(name, role, scope), digest.encode()) for name, digest, role, scope in rows}


class CredentialAuther:
    """pypiserver's auther over the credentials table, with the checks index/guard.py asks for.

    A verified (name, secret) pair is remembered in memory as an HMAC under a random key (bcrypt
    costs ~0.3 s; a read must not); wrong ones never are. A change of the credentials anywhere
    drops them all (see the module's docstring)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._pairs = VerifiedPairs(self._lock)
        self._seen: tuple[int, str | None] | None = None  # (db generation, meta.credentials) last read
        self._credentials: dict[str, tuple[Credential, bytes]] = {}

    def _current(self) -> dict[str, tuple[Credential, bytes]]:
        """The live credentials, reloaded when they changed. Holds the lock."""
        generation = self.db.generation()
        if self._seen is None or self._seen[0] != generation:
            version = self.db.meta("credentials")
            if self._seen is None or self._seen[1] != version:
                self._credentials = _load(self.db)
                self._pairs.forget()
            self._seen = (generation, version)  # last: see _unchanged
        return self._credentials

    def _unchanged(self) -> bool:
        """Has nothing been committed to the records since the credentials were last read (asked without the
        lock)? Any commit counts: the next request then looks at the credentials under the lock."""
        seen = self._seen
        return seen is not None and seen[0] == self.db.generation()

    def credential(self, username: str) -> Credential | None:
        with self._lock:
            found = self._current().get(username)
        return found[0] if found else None

    def knows(self, username: str) -> bool:
        return self.credential(username) is not None

    def read_only(self, username: str) -> bool:
        found = self.credential(username)
        return found is not None and found.role == "read"

    def remembered(self, username: str, password: str) -> bool:
        token = self._pairs.token(username, password)
        with self._lock:
            return username in self._current() and self._pairs.remembered(token)

    def __call__(self, username: str, password: str) -> bool:
        return self._pairs.check(self._pairs.token(username, password), lambda: self._current().get(username),
                                 lambda found: matches(password, found[1]), self._unchanged)


def matches(secret: str, digest: bytes) -> bool:
    """Does ``secret`` match the stored hash: bcrypt, or another scheme an adopted htpasswd held?"""
    try:
        if digest.startswith(b"$2"):
            return bcrypt.checkpw(secret.encode(), digest)
        from passlib.apache import htpasswd_context

        return bool(htpasswd_context.verify(secret, digest.decode()))
    except ValueError:  # a damaged hash lets nobody in
        return False


def _bump(connection: t.Any) -> None:
    connection.execute("INSERT INTO meta (key, value) VALUES ('credentials', '1') ON CONFLICT (key) "
                       "DO UPDATE SET value = CAST(value AS INTEGER) + 1")


def adopt_htpasswd(db: StateDB, htpasswd: Path, reader: str) -> None:
    """An older state folder's htpasswd users become credentials, once (while the table is empty):
    ``reader`` a read-everything reader, the other (the upload credential) the admin."""
    if db.read("SELECT 1 FROM credentials LIMIT 1"):
        return
    try:
        lines = htpasswd.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    users = [line.split(":", 1) for line in lines if ":" in line and not line.startswith("#")]
    now = time.time()
    with db.write() as connection:
        if connection.execute("SELECT 1 FROM credentials LIMIT 1").fetchone():
            return  # another worker adopted them meanwhile
        admin_taken = False
        for name, digest in users:
            role = "read" if name == reader or admin_taken else "admin"
            admin_taken = admin_taken or role == "admin"
            connection.execute("INSERT INTO credentials (name, hash, role, packages, created) VALUES (?, ?, ?, ?, ?)",
                               (name, digest.strip(), role, EVERY, now))
        _bump(connection)


def create(db: StateDB, name: str, packages: str, role: str) -> str:
    """A new credential; its secret (shown once, stored only as a bcrypt hash)."""
    if not name or len(name) > NAME_LIMIT or not set(name) <= NAME_CHARS or name[0] in "-_.":
        raise AccessError(f"NAME={name[:80]!r} is not a credential name: lowercase letters, digits, '-', '_', '.' "
                          f"(at most {NAME_LIMIT}), e.g. NAME=ci-churn")
    if role not in ROLES:
        raise AccessError(f"ROLE={role!r} is not one of {', '.join(ROLES[:-1])}; e.g. ROLE=upload for a team's CI")
    if role == "admin":
        raise AccessError("ROLE=admin: an index has one admin (credentials.json in its state folder); "
                          "give a team ROLE=maintain")
    scope = scope_of(packages or "")
    secret = secrets.token_urlsafe(24)
    digest = bcrypt.hashpw(secret.encode(), bcrypt.gensalt()).decode()
    with db.write() as connection:
        live = connection.execute("SELECT role FROM credentials WHERE name = ? AND revoked IS NULL", (name,)).fetchone()
        if live is not None:
            raise AccessError(f"a credential named {name} exists ({live[0]}); revoke it first "
                              f"(make credential REVOKE={name}) or choose another NAME")
        connection.execute("INSERT OR REPLACE INTO credentials (name, hash, role, packages, created, revoked) "
                           "VALUES (?, ?, ?, ?, ?, NULL)", (name, digest, role, scope, time.time()))
        _bump(connection)
    return secret


def _live(connection: t.Any, name: str, variable: str) -> tuple[str, str]:
    """(role, scope) of the live credential ``name``; an AccessError naming ``variable`` otherwise."""
    row = connection.execute("SELECT role, packages FROM credentials WHERE name = ? AND revoked IS NULL",
                             (name,)).fetchone()
    if row is None:
        raise AccessError(f"{variable}={name[:80]!r} is not a live credential of this index; "
                          "make credential LIST=1 lists them")
    return row


def revoke(db: StateDB, name: str) -> Credential:
    with db.write() as connection:
        row = _live(connection, name, "REVOKE")
        if row[0] == "admin":
            raise AccessError(f"{name} is the admin credential; it cannot be revoked (a state folder without an "
                              "admin could not make credentials again)")
        connection.execute("UPDATE credentials SET revoked = ? WHERE name = ?", (time.time(), name))
        _bump(connection)
    return Credential(name, row[0], row[1])


def assign(db: StateDB, project: str, name: str) -> str:
    """Give ``project``'s package to the scope of credential ``name``; the package."""
    package = package_of(project)
    with db.write() as connection:
        scope = _live(connection, name, "NAME")[1]
        connection.execute("INSERT OR REPLACE INTO owners (package, scope, claimed_by, at) VALUES (?, ?, ?, ?)",
                           (package, scope, name, time.time()))
    return package


def listing(db: StateDB) -> list[tuple[str, str, str, str | None]]:
    """(name, role, scope, owned packages) of every live credential."""
    owners: dict[str, list[str]] = {}
    for package, scope in db.read("SELECT package, scope FROM owners ORDER BY package"):
        owners.setdefault(scope, []).append(package)
    rows = db.read("SELECT name, role, packages FROM credentials WHERE revoked IS NULL ORDER BY name")
    return [(name, role, scope, ",".join(owners.get(scope, [])) or None) for name, role, scope in rows]


def owner(db: StateDB, package: str) -> str | None:
    rows = db.read("SELECT scope FROM owners WHERE package = ?", (package,))
    return rows[0][0] if rows else None


def unsealed(db: StateDB, project: str, version: str) -> bool:
    """Is ``version`` of ``project`` stored but not sealed (a release in progress, or one that died)?"""
    states = {state for (state,) in db.read("SELECT state FROM versions WHERE project = ? AND version = ?",
                                            (canonicalize_name(project), version))}
    return states == {"staged"}  # index/numbers.py's STAGED


def refusal(db: StateDB, credential: Credential, action: str, project: str, version: str = "") -> str | None:
    """Why ``credential`` may not do ``action`` on ``project`` (one line), or None. An upload by a
    non-admin credential of a package nobody owns claims it for the credential's scope. An upload
    credential may remove or take back a version that is not sealed: a failed release takes its own
    files back (only a sealed version needs maintain)."""
    needed = NEEDS.get(action, "admin")
    if action in ("remove", "take-back") and needed != credential.role and credential.role == "upload" \
            and version and unsealed(db, project, version):
        needed = "upload"
    if not credential.at_least(needed):
        return (f"{credential.name} is a {credential.role} credential; {action} needs {needed} or more "
                f"(the admin makes one: make credential NAME=... PACKAGES=... ROLE={needed})")
    if credential.role == "admin" or not project:
        return None
    package = package_of(project)
    if not credential.covers(package):
        return (f"{credential.name} may act on {credential.scope.replace(',', ', ')}, not {package}; "
                f"use a credential for {package} (the admin makes one: make credential PACKAGES={package})")
    held = owner(db, package)
    if held is None and action == "upload":
        with db.write() as connection:
            connection.execute("INSERT OR IGNORE INTO owners (package, scope, claimed_by, at) VALUES (?, ?, ?, ?)",
                               (package, credential.scope, credential.name, time.time()))
        held = owner(db, package)
    if held is not None and held != credential.scope:
        return (f"{package} is owned by another team (scope {held}); {credential.name} may not {action} it "
                f"(the admin can assign it: make credential ASSIGN={package} NAME={credential.name})")
    return None
