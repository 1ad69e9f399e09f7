"""Channels as views of the index, and promotion to them.

``/channels/<channel>/simple/`` is a simple index (PEP 503 HTML, PEP 691 JSON) made by the
main index's page machinery (``index/simple.py``): the page of the model package, and of
every ``<package>-*`` distribution (``-onnx``, ``-data``: the siblings released at the same
version), lists only the files of the version the channel serves, with their hashes,
PEP 658 metadata and yank status; any other project's page is the main index's. Files
are served under the channel prefix too (``/channels/<channel>/packages/<file>``, the
same bytes as ``/packages/<file>``). A client pointed at a channel with an unpinned or a
ranged requirement, lock or no lock, can only ever resolve the promoted version, so a
rollback (promoting an older version) is followed by a fresh install, ``uv lock
--upgrade``, ``poetry update`` and ``pdm update`` alike.

``POST /+promote`` (the upload credential; the read-only one gets 403 like every write)
records a promotion of a published, not yanked version in the channel's history
(``index/channels.py``); ``GET /channels/`` answers every channel's history as JSON.
Channels live under ``/channels/``, apart from the projects under ``/simple/``: a channel
named ``onnx`` or ``data`` is no project, and no project name is a channel.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import asdict
from datetime import datetime, timezone

from pypiserver.bottle_wrapper import Bottle, HTTPError, request, response
from pypiserver.pkg_helpers import normalize_pkgname_for_url

from index import owned_package
from index.channels import CHANNEL_NAME_LIMIT, ChannelStore, DamagedHistory, Promotion, valid_channel
from index.uploads import owned
from index.yanks import canonical_version


def _json(status: int, content: dict) -> str:
    response.status = status
    response.content_type = "application/json"
    return json.dumps(content)


class ChannelRoutes:
    def __init__(self, simple: t.Any, store: ChannelStore | None) -> None:
        self.simple = simple  # index.simple.SimpleRoutes
        self.store = store
        self.pypiserver = simple.pypiserver

    def _promoted(self, channel: str) -> Promotion:
        """What ``channel`` serves; 404 for a channel never promoted (a typo), 500 for a damaged history."""
        try:
            current = self.store.current(channel) if self.store and valid_channel(channel) else None
        except DamagedHistory as exc:
            raise HTTPError(500, f"the history of channel {channel} cannot be read: {exc}") from None
        if current is None:
            raise HTTPError(404, f"Not Found (no channel {channel} on this index: make promote VERSION=... "
                                 f"CHANNEL={channel} makes it)")
        return current

    def _version_for(self, channel: str, project: str) -> str | None:
        """The one version ``project`` shows in ``channel``: the promoted one for the model package and
        its siblings released with it (<name>-onnx); None (every version) for any other project and for
        the data package, whose versions follow the data (the models pin theirs in their metadata)."""
        promoted = self._promoted(channel)
        data_package = f"{owned_package.name()}-data"
        return promoted.version if owned(project) and normalize_pkgname_for_url(project) != data_package else None

    def index_page(self, channel: str) -> t.Any:
        self._promoted(channel)
        return self.simple.index_page(self.pypiserver["index"])  # relative links: they stay in the channel

    def project_page(self, channel: str, project: str) -> t.Any:
        version = self._version_for(channel, project)
        if project != normalize_pkgname_for_url(project):
            return self.pypiserver["project"](project)  # a relative redirect to the normalised name
        body = self.simple.page(project, version)
        if body is None:
            if owned(project):
                raise HTTPError(404, f"Not Found ({project} has no file of {version}, the version channel "
                                     f"{channel} serves)")
            return self.pypiserver["project"](project)  # pypiserver's fallback or 404, as on /simple/
        return body

    def file(self, channel: str, filename: str) -> t.Any:
        self._promoted(channel)
        return self.simple.metadata_file(filename, self.pypiserver["file"])

    def legacy_json(self, channel: str, project: str) -> t.Any:
        return self.simple.legacy_json(project, self.pypiserver["json"], self._version_for(channel, project))

    def histories(self) -> str:
        """``GET /channels/``: ``{"channels": {name: [promotion, ...]}}``, oldest promotion first."""
        if self.store is None:
            return _json(200, {"channels": {}})
        try:
            listed = {name: [asdict(p) for p in self.store.history(name)] for name in self.store.channels()}
        except DamagedHistory as exc:
            return _json(500, {"error": str(exc)})
        return _json(200, {"channels": listed})

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
        published = list(dict.fromkeys(canonical_version(p.version) for p in self.simple.packages(project)))
        if version not in published:
            return _json(404, {"error": f"{project} {version[:80]} is not on this index", "versions": published})
        yanked = self.simple.yanks.reasons(project) if self.simple.yanks else {}
        if version in yanked:
            return _json(409, {"error": f"{project} {version} is yanked ({yanked[version] or 'no reason given'})"})
        user = request.auth[0] if request.auth else "anonymous"
        try:
            promotion = self.store.promote(channel, version, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                           user, request.forms.getunicode("by") or "",
                                           request.forms.getunicode("commit") or "")
        except DamagedHistory as exc:
            return _json(500, {"error": str(exc)})
        except OSError as exc:
            return _json(500, {"error": f"the index could not write the history of {channel} ({exc.strerror})"})
        return _json(200, {"channel": channel, "promotion": asdict(promotion)})


def install(app: Bottle, simple: t.Any, store: ChannelStore | None) -> ChannelRoutes:
    """Serve the channel views and the promotion action on pypiserver's app, guarded as the main pages are."""
    from index.simple import protected

    config = app._pypiserver_config
    routes = ChannelRoutes(simple, store)
    listing, download = protected(config, "list"), protected(config, "download")
    app.route("/channels/", "GET", listing(routes.histories))
    app.route("/channels/<channel>/simple/", "GET", listing(routes.index_page))
    app.route("/channels/<channel>/simple/<project>/", "GET", listing(routes.project_page))
    app.route("/channels/<channel>/packages/<filename:path>", "GET", download(routes.file))
    app.route("/channels/<channel>/<project>/json", "GET", listing(routes.legacy_json))
    app.route("/+promote", "POST", protected(config, "update")(routes.promote))
    return routes
