"""The index's two credentials, generated on first start.

``credentials.json`` holds the upload credential (releases, yanks, removals) and
``reader.json`` the read-only one for consumers (listings, downloads, metadata,
the registry page); ``htpasswd`` holds both bcrypt hashes. All three are
owner-only in the index state folder, which is never committed. A state folder
from before the reader existed is upgraded in place: the reader is added, the
upload password is kept.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_FILE = "credentials.json"
READER_FILE = "reader.json"
HTPASSWD_FILE = "htpasswd"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def ensure(state_dir: Path, username: str, reader: str) -> Credentials:
    """The upload credentials, creating them, the reader's and the htpasswd on first use;
    a reader missing from an older state folder is added."""
    from passlib.apache import HtpasswdFile

    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    htpasswd_path = state_dir / HTPASSWD_FILE
    uploader = read(state_dir)
    if uploader is None or not htpasswd_path.is_file():
        uploader = Credentials(username, secrets.token_urlsafe(24))
        write_private(state_dir / CREDENTIALS_FILE, _json(uploader))
        htpasswd = HtpasswdFile(default_scheme="bcrypt")
        htpasswd.set_password(uploader.username, uploader.password)
    else:
        htpasswd = HtpasswdFile(str(htpasswd_path), default_scheme="bcrypt")
    viewer = read_reader(state_dir)
    if viewer is None or viewer.username == uploader.username:
        viewer = Credentials(reader, secrets.token_urlsafe(24))
        write_private(state_dir / READER_FILE, _json(viewer))
    changed = not htpasswd_path.is_file()
    if not htpasswd.check_password(viewer.username, viewer.password):
        htpasswd.set_password(viewer.username, viewer.password)
        changed = True
    if changed:
        write_private(htpasswd_path, htpasswd.to_string())
    return uploader


def _json(creds: Credentials) -> bytes:
    return json.dumps({"username": creds.username, "password": creds.password}).encode()


def read(state_dir: Path) -> Credentials | None:
    return read_file(state_dir / CREDENTIALS_FILE)


def read_reader(state_dir: Path) -> Credentials | None:
    return read_file(state_dir / READER_FILE)


def read_file(path: Path) -> Credentials | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(raw["username"], raw["password"])
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return None


def write_private(path: Path, data: bytes) -> None:
    """Create the file owner-only from the first byte, then move it into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
