"""Upload (and private-read) credentials, generated on first start.

The password lives in ``credentials.json`` and its bcrypt hash in ``htpasswd``,
both owner-only in the index state folder, which is never committed.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_FILE = "credentials.json"
HTPASSWD_FILE = "htpasswd"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def ensure(state_dir: Path, username: str) -> Credentials:
    """Read the credentials, creating them (and the htpasswd) on first use."""
    existing = read(state_dir)
    if existing is not None and (state_dir / HTPASSWD_FILE).is_file():
        return existing
    from passlib.apache import HtpasswdFile

    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    creds = Credentials(username, secrets.token_urlsafe(24))
    htpasswd = HtpasswdFile(default_scheme="bcrypt")
    htpasswd.set_password(creds.username, creds.password)
    write_private(state_dir / HTPASSWD_FILE, htpasswd.to_string())
    write_private(state_dir / CREDENTIALS_FILE,
                   json.dumps({"username": creds.username, "password": creds.password}).encode())
    return creds


def read(state_dir: Path) -> Credentials | None:
    return read_file(state_dir / CREDENTIALS_FILE)


def read_file(path: Path) -> Credentials | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(raw["username"], raw["password"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def write_private(path: Path, data: bytes) -> None:
    """Create the file owner-only from the first byte, then move it into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
