"""Channels as views of the index, and promotion to them.

``/channels/<channel>/simple/`` is a simple index (PEP 503 HTML, PEP 691 JSON) made by the
main index's page machinery (``index/simple.py``): the page of the model package, and of
each ``<package>-*`` distribution released with it (``-onnx``), lists exactly the files the
channel's current promotion pinned (index/channels.py: name and sha256), with their hashes,
PEP 658 metadata and yank status. If one of them is gone or has other bytes (removed or
replaced behind the index's back), the page and the file answer 404 with one line saying so:
the channel serves nothing rather than other bytes. The data package (its versions follow the
data) and any other project are served as the main index serves them. Files are served under
the channel prefix too (``/channels/<channel>/packages/<file>``), but only those the view lists.
A client pointed at a channel with an unpinned or a ranged requirement, lock or no lock, can
only ever resolve the promoted version, so a rollback (promoting an older version) is followed
by a fresh install, ``uv lock --upgrade``, ``poetry update`` and ``pdm update`` alike.

``POST /+promote`` (the upload credential; the read-only one gets 403 like every write)
records a promotion of a sealed, complete, not yanked version (index/numbers.py), with the
user the request authenticated as and the commit its wheel records; ``GET /channels/``
answers each channel's newest promotions as JSON (``?channel=``, ``?page=``, ``?limit=``,
``?all=1`` for the rest). Channels live under ``/channels/``, apart from the projects under
``/simple/``: a channel named ``onnx`` or ``data`` is no project, and no project name is a channel.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from packaging.version import Version
from pypiserver.bottle_wrapper import Bottle, HTTPError, request, response
from pypiserver.pkg_helpers import normalize_pkgname_for_url

from index import owned_package
from index.enforce import authenticated_name
from index.channels import CHANNEL_NAME_LIMIT, PAGE_SIZE, ChannelStore, Promotion, valid_channel
from index.numbers import SEALED, STAGED, TAKEN_BACK, VersionStates, in_release, when
from index.simple import PinBroken
from index.statedb import StateError
from index.uploads import owned
from index.yanks import canonical_version

LIST_LIMIT = 1000  # promotions of a channel one listing answers at most (?all=1 answers every one)


def _json(status: int, content: dict) -> str:
    response.status = status
    response.content_type = "application/json"
    return json.dumps(content)


def _positive(value: str | None, default: int) -> int:
    """
    >>> _positive("3", 1), _positive("0", 1), _positive("x", 1), _positive(None, 20)
    (3, 1, 1, 20)
    """
    return int(value) if value and value.isascii() and value.isdigit() and int(value) > 0 else default


class ChannelRoutes:
    def __init__(self, simple: t.Any, store: ChannelStore | None, states: VersionStates | None = None,
                 commit_of: t.Callable[[t.Any], str] = lambda wheel: "unknown") -> None:
        self.simple = simple  # index.simple.SimpleRoutes
        self.store = store
        self.states = states
        self.commit_of = commit_of  # a wheel's file -> the commit its models were built from
        self.pypiserver = simple.pypiserver

    def _promoted(self, channel: str) -> Promotion:
        """What ``channel`` serves; 404 for a channel never promoted (a typo), 500 for records that cannot be read."""
        try:
            current = self.store.current(channel) if self.store and valid_channel(channel) else None
        except StateError as exc:
            raise HTTPError(500, f"the history of channel {channel} cannot be read: {exc}") from None
        if current is None:
            raise HTTPError(404, f"Not Found (no channel {channel} on this index: make promote VERSION=... "
                                 f"CHANNEL={channel} makes it)")
        return current

    def _pinned(self, channel: str, project: str) -> tuple[Promotion, dict[str, str] | None]:
        """The promotion and the files of ``project`` it serves: None (every file, as on /simple/) for a
        project the release does not seal (the data package, the runtime dependencies)."""
        promotion = self._promoted(channel)
        project = normalize_pkgname_for_url(project)
        if not (owned(project) and in_release(project)):
            return promotion, None
        pinned = promotion.pinned(project)
        if not pinned:
            raise HTTPError(404, f"Not Found (channel {channel} serves {owned_package.name()} {promotion.version}, "
                                 f"which has no {project})")
        return promotion, pinned

    def _broken(self, channel: str, promotion: Promotion, why: PinBroken) -> HTTPError:
        return HTTPError(404, f"Not Found (channel {channel} serves {promotion.version} (promotion {promotion.number}), "
                              f"but {why}: the channel serves nothing rather than other bytes; promote a version "
                              f"again: make promote VERSION=... CHANNEL={channel})")

    def index_page(self, channel: str) -> t.Any:
        self._promoted(channel)
        return self.simple.index_page(self.pypiserver["index"])  # relative links: they stay in the channel

    def project_page(self, channel: str, project: str) -> t.Any:
        promotion, pinned = self._pinned(channel, project)
        if project != normalize_pkgname_for_url(project):
            return self.pypiserver["project"](project)  # a relative redirect to the normalised name
        try:
            body = self.simple.page(project, pinned, key=f"{project}\x00{channel}\x00{promotion.number}"
                                    if pinned is not None else None)
        except PinBroken as broken:
            raise self._broken(channel, promotion, broken) from None
        if body is None:
            if owned(project):
                raise HTTPError(404, f"Not Found ({project} is not on this index)")
            return self.pypiserver["project"](project)  # pypiserver's fallback or 404, as on /simple/
        return body

    def file(self, channel: str, filename: str) -> t.Any:
        """A file the channel's view lists (a pinned one only if it still has the promoted bytes)."""
        promotion = self._promoted(channel)
        wanted = filename.removesuffix(".metadata")
        pkg = self.simple.served(wanted)
        if pkg is not None and owned(pkg.pkgname_norm) and in_release(pkg.pkgname_norm):
            pinned = promotion.pinned(pkg.pkgname_norm) or {}
            name = wanted.rsplit("/", 1)[-1]
            if name not in pinned:
                raise HTTPError(404, f"Not Found ({name} is not in channel {channel}, which serves "
                                     f"{owned_package.name()} {promotion.version})")
            try:
                self.simple.packages(pkg.pkgname_norm, {name: pinned[name]})
            except PinBroken as broken:
                raise self._broken(channel, promotion, broken) from None
        return self.simple.metadata_file(filename, self.pypiserver["file"])

    def legacy_json(self, channel: str, project: str) -> t.Any:
        promotion, pinned = self._pinned(channel, project)
        try:
            return self.simple.legacy_json(project, self.pypiserver["json"], pinned)
        except PinBroken as broken:
            raise self._broken(channel, promotion, broken) from None

    def histories(self) -> str:
        """``GET /channels/``: ``{"channels": {name: [promotion, ...]}, "totals": {name: count}}``, each
        channel's newest ``limit`` promotions (page 1; ``page=2`` the ones before), oldest first."""
        if self.store is None:
            return _json(200, {"channels": {}, "totals": {}})
        wanted = request.query.get("channel") or None
        every = request.query.get("all") == "1"
        limit = min(_positive(request.query.get("limit"), PAGE_SIZE), LIST_LIMIT)
        page = _positive(request.query.get("page"), 1)
        try:
            totals = self.store.totals()
            names = [wanted] if wanted in totals else [] if wanted else list(totals)
            listed = {name: [asdict(p) for p in self.store.history(name, None if every else limit, page)]
                      for name in names}
        except StateError as exc:
            return _json(500, {"error": str(exc)})
        return _json(200, {"channels": listed, "totals": {name: totals[name] for name in names},
                           "page": 1 if every else page, "limit": None if every else limit})

    def _refusal(self, project: str, version: str) -> tuple[int, str] | None:
        """Why ``version`` cannot be promoted: (status, one line), or None."""
        records = self.states.release_records(version) if self.states else []
        taken = next((r for r in records if r.state == TAKEN_BACK), None)
        if taken is not None:
            return 409, f"{project} {version} was taken back on {when(taken.changed)}: promote another version"
        if records and not any(r.state == SEALED for r in records) and any(r.state == STAGED for r in records):
            return 409, (f"{project} {version} is not sealed: its release has not finished (or died: the next make "
                         "release takes it back); promote a published version")
        return None

    def promote(self) -> str:
        channel = request.forms.get("channel") or ""
        project = normalize_pkgname_for_url(request.forms.get("name") or "")
        version = canonical_version(request.forms.get("version") or "")
        package = owned_package.name()
        if self.store is None:
            return _json(501, {"error": "this index runs without a state folder; start it with make index "
                                        "(or set INDEX_STATE)"})
        if not valid_channel(channel):
            return _json(400, {"error": f"channel {channel[:80]!r} is not lowercase letters, digits and hyphens "
                                        f"(at most {CHANNEL_NAME_LIMIT})"})
        if project != package:
            return _json(400, {"error": f"this index's channels serve {package}, not {project[:80]!r}"})
        try:
            refusal = self._refusal(project, version)
            if refusal is not None:
                return _json(refusal[0], {"error": refusal[1]})
            served = [pkg for pkg in self.simple.config.backend.get_all_packages() if in_release(pkg.pkgname_norm)]
            published = sorted({canonical_version(p.version) for p in served if p.pkgname_norm == package}, key=Version)
            files = [pkg for pkg in served if canonical_version(pkg.version) == version]
            model = sorted(pkg.relfn for pkg in files if pkg.pkgname_norm == package)
            if not model:
                return _json(404, {"error": f"{project} {version[:80]} is not on this index", "versions": published})
            wheel = next((pkg for pkg in files if pkg.pkgname_norm == package and pkg.relfn.endswith(".whl")), None)
            if wheel is None or not any(name.endswith(".tar.gz") for name in model):
                return _json(409, {"error": f"{project} {version} is incomplete (the index serves only "
                                            f"{', '.join(Path(name).name for name in model)}): promote a complete version"})
            yanked = self.simple.yanks.reasons(project) if self.simple.yanks else {}
            if version in yanked:
                return _json(409, {"error": f"{project} {version} is yanked ({yanked[version] or 'no reason given'})"})
            pins: dict[str, dict[str, str]] = {}
            for pkg in files:
                digest = self.simple.config.backend.digest(pkg) or ""
                pins.setdefault(pkg.pkgname_norm, {})[Path(pkg.fn).name] = digest.removeprefix("sha256=")
            promotion = self.store.promote(channel, version, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                           authenticated_name(), self.commit_of(wheel),
                                           request.forms.getunicode("note") or "", pins)
        except StateError as exc:
            return _json(500, {"error": str(exc)})
        return _json(200, {"channel": channel, "promotion": asdict(promotion)})


def install(app: Bottle, simple: t.Any, store: ChannelStore | None, states: VersionStates | None = None,
            commit_of: t.Callable[[t.Any], str] = lambda wheel: "unknown") -> ChannelRoutes:
    """Serve the channel views and the promotion action on pypiserver's app, guarded as the main pages are."""
    from index.simple import protected

    config = app._pypiserver_config
    routes = ChannelRoutes(simple, store, states, commit_of)
    listing, download = protected(config, "list"), protected(config, "download")
    app.route("/channels/", "GET", listing(routes.histories))
    app.route("/channels/<channel>/simple/", "GET", listing(routes.index_page))
    app.route("/channels/<channel>/simple/<project>/", "GET", listing(routes.project_page))
    app.route("/channels/<channel>/packages/<filename:path>", "GET", download(routes.file))
    app.route("/channels/<channel>/<project>/json", "GET", listing(routes.legacy_json))
    app.route("/+promote", "POST", protected(config, "update")(routes.promote))
    return routes
