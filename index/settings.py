"""The index's defaults and where it is: the index owns these, the pipeline re-exports them."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INDEX_HOST = "127.0.0.1"
INDEX_PORT = 8080
INDEX_DIR = REPO / "index" / "packages"
INDEX_STATE_ROOT = REPO / "index" / ".state"
DOCS_SITE = REPO / "site"  # the documentation make docs builds, served at /docs/
# The port of the index this clone last started (make index, or any target that starts one) with its state in
# INDEX_STATE_ROOT: every target uses it while INDEX_PORT is unset, so a port is given once.
PORT_FILE = INDEX_STATE_ROOT / "port"
INDEX_USER = "mymodel"  # the upload credential: releases, yanks, removals
INDEX_READER = "mymodel-reader"  # the consumers' read-only credential (GET and HEAD only)
# The model package an index owns, with every <package>-<channel>, when started without --package
# (index/owned_package.py); the pipeline passes its own: dataset.toml [package] name.
PACKAGE = "mymodel"
INDEX_AUTH_MODES = ("update", "read")  # who needs credentials: uploads, or everything
INDEX_KINDS = ("pypiserver", "devpi")  # INDEX_KIND: the embedded index's protocol, or devpi-server's
INDEX_START_TIMEOUT = 20.0
INDEX_READ_TIMEOUT = 30.0  # how long a release waits for INDEX_READ_URL (a replica) to serve it
# INDEX_ABANDONED_AFTER: seconds after its last upload that a version nobody sealed counts as abandoned (a
# release killed between its uploads): reported by make versions, taken back by the next make release.
# Longer than the slowest upload of one file (a release in progress is left alone).
ABANDONED_AFTER = 600

# What the index reads from an uploaded wheel (index/archive.py): a zip member of a few
# hundred KB can inflate to GBs, so each is read as a stream that stops at its limit.
METADATA_LIMIT = 4 * 2**20  # a wheel's .dist-info/METADATA, the model card included
JSON_LIMIT = 4 * 2**20  # each of manifest.json and a model's metadata.json
WHEEL_FACTS_LIMIT = 16 * 2**20  # all the registry page reads from one wheel (JSON files and METADATA)
ARCHIVE_ENTRIES_LIMIT = 10_000  # files in a wheel the index opens (a model package has tens)
ARCHIVE_DIRECTORY_LIMIT = 4 * 2**20  # its central directory, the list of those files

# The server (waitress). A connection that sends or receives nothing for CHANNEL_TIMEOUT
# seconds, without a request in progress, is closed; an upload or download that moves
# is never idle, however slow. Past CONNECTION_LIMIT open connections new ones wait.
CONNECTION_LIMIT = 1000
# All a request may send before its credential is checked (index/guard.py): its headers; no body byte
# is read without the upload credential. waitress's own limit is 256 KiB.
HEADER_LIMIT = 64 * 2**10
CHANNEL_TIMEOUT = 30
CLEANUP_INTERVAL = 5  # how often idle connections are looked for (seconds)


def env(name: str, default: str | None = None) -> str | None:
    """A setting from the environment; an empty value counts as unset (Make passes those)."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def remembered_port() -> str | None:
    """The port in PORT_FILE, when this clone started an index there (None: never, or the file is gone)."""
    try:
        return PORT_FILE.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def looks_like_devpi(url: str) -> bool:
    """devpi serves an index at ``/<user>/<index>/``; pypiserver at the root.

    >>> looks_like_devpi("http://127.0.0.1:3141/mymodel/dev/"), looks_like_devpi("http://127.0.0.1:8080/")
    (True, False)
    >>> looks_like_devpi("http://127.0.0.1:3141/mymodel/dev/+simple/"), looks_like_devpi("http://h/pypi/simple/")
    (False, False)
    """
    parts = [part for part in urllib.parse.urlsplit(url).path.split("/") if part]
    return len(parts) == 2 and not parts[1].startswith("+") and parts[1] != "simple"


def install_from_replica(simple_url: str, requirement: str) -> str:
    """The install lines for a devpi index without bases: the dependencies come from the
    installer's default index, which cannot serve an exact pin with a local label (a public
    index refuses those), so ``requirement`` comes from ``simple_url`` only."""
    return (f"  pip install --extra-index-url {simple_url} {requirement}\n"
            f"  uv pip install --index {simple_url} {requirement}")


@dataclass(frozen=True)
class IndexSettings:
    """Where the index is and how to reach it."""

    host: str
    port: int
    packages_dir: Path
    state_dir: Path
    auth: str | None  # "update" or "read"; None (INDEX_AUTH unset): as the running index, "update" to start one
    external_url: str | None  # INDEX_URL: an index this project does not run
    kind: str | None = None  # INDEX_KIND; None: devpi when INDEX_URL looks like a devpi index
    read_url: str | None = None  # INDEX_READ_URL: a replica's simple URL, for consumers and read-back
    package: str = PACKAGE  # the model package an index started from here owns

    @property
    def url(self) -> str:
        return self.external_url or f"http://{self.host}:{self.port}/"

    @property
    def backend(self) -> str:
        """``pypiserver`` or ``devpi``: which protocol the index at ``url`` speaks."""
        if self.kind:
            return self.kind
        return "devpi" if self.external_url and looks_like_devpi(self.external_url) else "pypiserver"

    @property
    def primary_simple_url(self) -> str:
        """The simple pages of the index written to."""
        return self.url.rstrip("/") + ("/+simple/" if self.backend == "devpi" else "/simple/")

    @property
    def simple_url(self) -> str:
        """Where consumers install from: the replica when INDEX_READ_URL is set."""
        return self.read_url.rstrip("/") + "/" if self.read_url else self.primary_simple_url
