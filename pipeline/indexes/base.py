"""What the pipeline asks an index over HTTP, the part every index answers alike: which
files and versions it serves, their bytes, and a replica's read-back. What differs (where
the simple pages are, removing a version, yanking) is each kind's own module: pypiserver.py,
devpi.py; connect.py picks the one the settings name."""

from __future__ import annotations

import abc
import base64
import contextlib
import hashlib
import http.client
import json
import os
import tempfile
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from index import credentials as index_credentials
from index.channels import PAGE_SIZE, Promotion
from pipeline import progress
from pipeline.config import HTTP_TIMEOUT, INDEX_READ_TIMEOUT, PACKAGE, IndexSettings, env
from pipeline.errors import ConfigError, CredentialsRefused, PackageIndexError


JSON_PAGE = "application/vnd.pypi.simple.v1+json"
CHANNEL_PAGE = PAGE_SIZE  # promotions of a channel make channels shows at once
ACCEPT_PAGES = f"{JSON_PAGE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


@dataclass(frozen=True)
class ServedFile:
    filename: str
    url: str
    sha256: str | None  # from the link's #sha256= fragment (JSON: its hashes)
    version: str
    yanked: str | None = None  # the reason (PEP 592); None: not yanked


@dataclass(frozen=True)
class Histories:
    """Channel -> one page of its promotions (oldest first), and channel -> how many it has."""

    promotions: dict[str, list[Promotion]]
    totals: dict[str, int]


@dataclass(frozen=True)
class UsedVersion:
    """A version of one of the package's projects the index stored a file of (the index's records)."""

    project: str
    version: str
    state: str  # "staged" (uploaded, not sealed: served nowhere), "sealed" or "taken back" (its number burned)
    changed: str  # when its last file was stored, it was sealed or taken back (ISO 8601, the index's clock)
    age_seconds: float = 0.0  # since ``changed``
    abandoned: bool = False  # staged, and older than the index's bound: a release that died
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256 (of a version not sealed)

    @property
    def ago(self) -> str:
        return _ago(self.age_seconds)

    def describe(self) -> str:
        """e.g. ``taken back on 2026-12-07T10:00:00Z``, ``uploaded 12 min ago, not sealed``"""
        if self.state == "staged":
            return f"uploaded {self.ago}, not sealed"
        return f"{self.state} on {self.changed}"


def _ago(seconds: float) -> str:
    """
    >>> _ago(5), _ago(720), _ago(7200)
    ('5 s ago', '12 min ago', '2.0 h ago')
    """
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago" if seconds < 7200 else f"{seconds / 3600:.1f} h ago"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []  # each <a>'s attributes (unescaped)

    @property
    def hrefs(self) -> list[str]:
        return [link["href"] or "" for link in self.links]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(dict(attrs))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # pypiserver redirects projects it does not hold to its fallback index:
    # for us that means "not published here", never a reason to leave loopback.
    def redirect_request(self, *args, **kwargs):
        return None


def version_of(filename: str) -> str | None:
    """The version in a wheel or sdist file name.

    >>> version_of("mymodel-1.1.1+titanic-py3-none-any.whl"), version_of("mymodel-1.1.1+titanic.tar.gz")
    ('1.1.1+titanic', '1.1.1+titanic')
    """
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def project_of(filename: str) -> str:
    """The (normalized) project name in a wheel or sdist file name.

    >>> project_of("mymodel_onnx-1.1.1+titanic-py3-none-any.whl"), project_of("mymodel-1.1.1+titanic.tar.gz")
    ('mymodel-onnx', 'mymodel')
    """
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[0])
    return str(parse_sdist_filename(filename)[0])


def _unwritable(served: ServedFile, target: Path, exc: OSError) -> PackageIndexError:
    # ours: _open would blame the index for it
    return PackageIndexError(f"cannot save the download of {served.filename} to {target} ({exc.strerror}); "
                             "free some space or set TMPDIR to a writable folder")


def _refuse_unless_announced(served: ServedFile, digest: str) -> None:
    if served.sha256 and digest != served.sha256:
        raise PackageIndexError(f"the index lists {served.filename} with sha256 {served.sha256} but served {digest}; "
                                "the file on the index changed: check the index folder, then retry")


class IndexClient(abc.ABC):
    """A client of one index; ``pipeline.indexes.connect.index_client(settings)`` gives the one
    ``settings`` name (a ``PypiserverClient`` or a ``DevpiClient``)."""

    # Does the index record a promotion itself (who from the request's authentication, the commit from the
    # wheel it holds)? Otherwise the client writes the record (devpi) and reads the commit from the wheel.
    records_promotions = False

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/") + "/"
        self.username, self.password = self._credentials()
        self._opener = urllib.request.build_opener(_NoRedirect)

    def _credentials(self) -> tuple[str | None, str | None]:
        if self.settings.external_url:
            user, password = env("INDEX_USERNAME", env("TWINE_USERNAME")), env("INDEX_PASSWORD", env("TWINE_PASSWORD"))
            saved = env("INDEX_CREDENTIALS")  # a credentials.json (make release INDEX=devpi)
            if not (user and password) and saved:
                creds = index_credentials.read_file(Path(saved))
                return (creds.username, creds.password) if creds else (None, None)
            return user, password
        creds = index_credentials.read(self.settings.state_dir)
        return (creds.username, creds.password) if creds else (None, None)

    def _request(self, url: str, data: bytes | None = None) -> bytes:
        with self._open(url, data) as response:
            return response.read()

    @contextlib.contextmanager
    def _open(self, url: str, data: bytes | None = None,
              headers: dict[str, str] | None = None) -> Iterator[http.client.HTTPResponse]:
        """A response to read, with our credentials sent; errors in opening or reading it explained."""
        request = urllib.request.Request(url, data=data, headers=headers or {})
        if self.username and self.password:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with self._opener.open(request, timeout=HTTP_TIMEOUT) as response:
                yield response
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise CredentialsRefused(
                    f"the index at {self.url} refused our credentials (HTTP {exc.code}); "
                    f"check {self.settings.state_dir}/credentials.json or INDEX_USERNAME/INDEX_PASSWORD") from None
            raise
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PackageIndexError(f"the index at {self.url} is unreachable ({reason}); "
                                    "start it with make index (or check INDEX_URL)") from None

    @abc.abstractmethod
    def page_url(self, project: str = "") -> str:
        """The simple page of ``project``; of the index without one."""

    def files(self, project: str = PACKAGE) -> list[ServedFile]:
        """The files of ``project``, from its PEP 691 JSON page, or its HTML page on an index without it."""
        return self._files_on(self.page_url(project))

    def wait_for_readers(self, version: str, hashes: dict[str, str], project: str = PACKAGE) -> None:
        """With INDEX_READ_URL (a replica): wait until it serves every file of ``version`` with
        the sha256 in ``hashes`` (filename -> sha256), read back, so the install line printed next works."""
        if not self.settings.read_url:
            return
        page_url = f"{self.settings.simple_url}{project}/"
        served: dict[str, ServedFile] = {}

        def serves_ours() -> bool:
            served.clear()
            served.update({f.filename: f for f in self._files_on(page_url) if f.version == version})
            return set(served) >= set(hashes) and all(served[n].sha256 == d for n, d in hashes.items())
        started = self._wait_until(serves_ours, page_url, f"{project} {version} with our sha256")
        for name, digest in hashes.items():
            downloaded = self.download_sha256(served[name])
            if downloaded != digest:
                raise PackageIndexError(f"{page_url} (INDEX_READ_URL) served {name} with sha256 {downloaded}, ours is "
                                        f"{digest}; the replica's copy is damaged, check it")
        print(f"read back {version} from {self.settings.simple_url} after {time.monotonic() - started:.2f} s: "
              "same sha256", flush=True)

    def _wait_until(self, ready: t.Callable[[], bool], page_url: str, what: str) -> float:
        """Poll until ``ready()`` (an unreachable reader counts as not ready), at most INDEX_READ_TIMEOUT;
        when it began."""
        try:
            timeout = float(env("INDEX_READ_TIMEOUT", str(INDEX_READ_TIMEOUT)))
        except ValueError:
            raise ConfigError(f"INDEX_READ_TIMEOUT={env('INDEX_READ_TIMEOUT')!r} is not a number of seconds; "
                              "use e.g. INDEX_READ_TIMEOUT=60") from None
        started = time.monotonic()
        waiting = False
        while True:
            try:
                if ready():
                    return started
            except PackageIndexError:
                pass
            if time.monotonic() - started > timeout:
                raise PackageIndexError(f"{page_url} (INDEX_READ_URL) did not serve {what} within {timeout:.0f} s; "
                                        "check the replica's replication, or raise INDEX_READ_TIMEOUT")
            if not waiting:
                print(f"waiting up to {timeout:.0f} s for {page_url} (INDEX_READ_URL) to serve {what}", flush=True)
                waiting = True
            time.sleep(0.05)

    def _files_on(self, page_url: str) -> list[ServedFile]:
        try:
            with self._open(page_url, headers={"Accept": ACCEPT_PAGES}) as response:
                form, page = response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307, 308, 404):
                return []
            raise PackageIndexError(f"{page_url} answered HTTP {exc.code}; check the index log") from None
        if form == JSON_PAGE:
            entries = [(e.get("url", ""), e.get("hashes", {}).get("sha256"), e.get("yanked", False))
                       for e in json.loads(page).get("files", [])]
        else:
            parser = _Links()
            parser.feed(page.decode("utf-8", errors="replace"))
            entries = [(link["href"] or "", None, link.get("data-yanked", False)) for link in parser.links]
        served = []
        for url, digest, yanked in entries:
            path, _, fragment = urllib.parse.urljoin(page_url, url).partition("#")
            filename = urllib.parse.unquote(path.rsplit("/", 1)[-1])
            version = version_of(filename)
            if version is None:
                continue
            if digest is None and fragment.startswith("sha256="):
                digest = fragment.removeprefix("sha256=")
            reason = None if yanked in (False, None) else yanked if isinstance(yanked, str) else ""
            served.append(ServedFile(filename, path, digest, version, reason))
        return served

    def versions(self, project: str = PACKAGE) -> list[str]:
        return sorted({f.version for f in self.files(project)})

    def download(self, served: ServedFile) -> bytes:
        """A small file's body (a channel wheel): large ones go through download_to or download_temporary."""
        return self._request(served.url)

    def download_sha256(self, served: ServedFile) -> str:
        """The sha256 of what the index serves for ``served``, hashed as it streams (nothing kept)."""
        return self.download_to(served, Path(os.devnull))[0]

    def download_verified(self, served: ServedFile, target: Path) -> tuple[str, int, str | None]:
        """``download_to``, refusing bytes whose sha256 is not the one the link announces."""
        digest, size, modified = self.download_to(served, target)
        _refuse_unless_announced(served, digest)
        return digest, size, modified

    def download_temporary(self, served: ServedFile) -> IO[bytes]:
        """``served`` streamed into an anonymous temporary file (gone once closed), checked against
        its link's sha256 and positioned at its start."""
        try:
            out = tempfile.TemporaryFile(prefix="mymodel-download-")
        except OSError as exc:
            raise _unwritable(served, Path(tempfile.gettempdir()), exc) from None
        try:
            digest, _, _ = self._stream_into(served, out, Path(tempfile.gettempdir()))
            _refuse_unless_announced(served, digest)
            out.seek(0)
        except BaseException:
            out.close()
            raise
        return out

    def download_to(self, served: ServedFile, target: Path) -> tuple[str, int, str | None]:
        """Stream ``served`` into ``target`` while hashing it (never whole in memory).

        Returns its sha256, its size and when the index got it (the Last-Modified header)."""
        try:
            out = open(target, "wb")
        except OSError as exc:
            raise _unwritable(served, target, exc) from None
        with out:
            return self._stream_into(served, out, target)

    def _stream_into(self, served: ServedFile, out: IO[bytes], target: Path) -> tuple[str, int, str | None]:
        digest, size = hashlib.sha256(), 0
        try:
            with self._open(served.url) as response:
                length = response.headers.get("Content-Length")
                with progress.transfer(f"downloading {served.filename}",
                                       int(length) if length and length.isdigit() else None) as advance:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        digest.update(block)
                        size += len(block)
                        try:
                            out.write(block)
                        except OSError as exc:
                            raise _unwritable(served, target, exc) from None
                        advance(len(block))
                modified = response.headers.get("Last-Modified")
        except urllib.error.HTTPError as exc:
            raise PackageIndexError(f"the index lists {served.filename} but answered HTTP {exc.code} for it; "
                                    "check the index log") from None
        return digest.hexdigest(), size, modified

    @abc.abstractmethod
    def remove_version(self, version: str, project: str = PACKAGE) -> None:
        """Take ``version`` back: delete every file of it; its number is used (``used_versions``)."""

    def used_versions(self, project: str | None = None) -> list[UsedVersion]:
        """Every version of ``project`` (default: the package and its siblings) whose number the index
        has seen used and does not serve: staged, taken back. An index that keeps no such records: []."""
        return []

    @property
    def upload_url(self) -> str:
        """Where a release's files go before its ``seal``: the index itself, unless it stages them elsewhere (devpi)."""
        return self.url

    def seal(self, version: str, files: dict[str, str]) -> None:
        """Serve the release ``version``'s uploaded ``files`` (name -> sha256), all at once. An index that
        serves each file as it arrives needs nothing."""

    def take_back_abandoned(self, version: str) -> list[str]:
        """Take back ``version`` that a release left staged and never sealed, older than the index's bound;
        the files removed."""
        raise PackageIndexError(f"{self.url} keeps no staged versions; nothing to take back")

    def held(self, version: str, project: str = PACKAGE) -> dict[str, str | None]:
        """File name -> sha256 of everything the index holds of ``project`` ``version``: served or staged."""
        found: dict[str, str | None] = {f.filename: f.sha256 for f in self.files(project) if f.version == version}
        for used in self.used_versions(project):
            if used.version == version:
                found.update(used.files)
        return found

    def held_already(self, answer: str) -> bool:
        """Does an upload's successful answer (reason and body) say the index already held the file?"""
        return False

    @abc.abstractmethod
    def set_yanked(self, version: str, yanked: bool, reason: str | None = None, project: str = PACKAGE) -> dict:
        """Yank ``version`` with ``reason`` (None: a version already yanked keeps its reason), or
        unyank it; the index's answer: the reason it had before (``previous``, None: not yanked), the
        versions it serves (``versions``) and those still installable by a range (``not_yanked``)."""

    @abc.abstractmethod
    def channel_url(self, channel: str) -> str:
        """The simple index that serves ``channel``'s promoted version, for consumers."""

    @abc.abstractmethod
    def promote(self, channel: str, version: str, note: str = "", project: str = PACKAGE,
                built_from: str = "unknown") -> Promotion:
        """Make ``version`` the one ``channel`` serves; recorded with who promoted (the credential), when,
        the commit the version was built from, the files it serves and ``note``. ``built_from``: the commit
        the caller read from the version's wheel, for an index that keeps no record itself (devpi); the
        embedded index reads it from the wheel it holds."""

    def check_channel(self, channel: str, promotion: Promotion | None = None) -> None:
        """Fail closed (PackageIndexError) unless ``channel`` serves exactly the files ``promotion`` (by default
        its newest) pinned. The embedded index's views serve nothing else themselves: nothing to check."""

    @abc.abstractmethod
    def channel_histories(self, channel: str | None = None, page: int = 1,
                          limit: int | None = CHANNEL_PAGE) -> Histories:
        """Each channel's promotions (``channel``: that one only): page ``page`` of ``limit`` (None: all),
        the newest first page, oldest first within it; and how many each has."""

    def compare_url(self, a: str, b: str, project: str = PACKAGE) -> str | None:
        """The page that shows versions ``a`` and ``b`` side by side; None where the index has no registry pages."""
        return None

    def yanked(self, project: str = PACKAGE) -> dict[str, str]:
        """Yanked version -> reason (PEP 592)."""
        return {served.version: served.yanked for served in self.files(project) if served.yanked is not None}

    def projects(self) -> list[str]:
        """The projects the index serves (its /simple/ page)."""
        parser = _Links()
        parser.feed(self._request(self.page_url()).decode("utf-8", errors="replace"))
        return sorted(href.strip("/").rsplit("/", 1)[-1] for href in parser.hrefs)
