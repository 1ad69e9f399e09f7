"""The simple pages and the yank action, as routes on pypiserver's bottle app.

``/simple/<project>/`` is pypiserver's page (same links, same sha256 fragments
from the backend's digest cache) plus the attributes of newer standards:
``data-yanked`` (PEP 592), ``data-core-metadata`` / ``data-dist-info-metadata``
and ``data-requires-python`` (PEP 658/714, the metadata served at
``<file-url>.metadata``); the same as PEP 691 JSON when the client's Accept header
prefers it (``/simple/`` too). ``POST /+yank`` and ``POST /+unyank`` record a yank
with the upload credentials. Routes registered with pypiserver's own rules
replace its handlers in place; anything this module does not answer (a
project the index does not hold, a name to normalise) goes to pypiserver's,
except a name the index owns (``index/uploads.py``): never redirected to the
fallback index, so an unpromoted channel cannot be installed from elsewhere.
pypiserver's legacy ``/<project>/json`` (which named a yanked version the newest
and carried no digests) is replaced by a true one (``pages.legacy_json``).

A download (``/packages/<file>``) finds its file in a map of every served file by name, kept like a
page (index/pagecache.py: rebuilt after any change of the folder or of the version records, and
after an upload or removal through this server), instead of pypiserver's listing of the whole folder
on every request: one dictionary lookup per download, whatever the number of files.
"""

from __future__ import annotations

import functools
import io
import json
import mimetypes
import os
import typing as t
import weakref
from pathlib import Path
from urllib.parse import urljoin

from pypiserver.bottle_wrapper import Bottle, HTTPError, request, response, static_file
from pypiserver.pkg_helpers import normalize_pkgname_for_url

from index import pages
from index.metadata import CoreMetadata, MetadataCache
from index.numbers import VersionStates
from index.pagecache import PageCache
from index.uploads import owned
from index.watch import FolderWatch
from index.yanks import DamagedYankFile, YankStore, canonical_version, reason_too_long


def protected(config: t.Any, action: str) -> t.Callable:
    """pypiserver's rule: credentials required when ``action`` is in the index's auth list."""
    def decorate(handler: t.Callable) -> t.Callable:
        @functools.wraps(handler)
        def guarded(*args: t.Any, **kwargs: t.Any) -> t.Any:
            if action in config.authenticate:
                if not request.auth or request.auth[1] is None:
                    raise HTTPError(401, headers={"WWW-Authenticate": 'Basic realm="pypi"'})
                if not config.auther(*request.auth):
                    raise HTTPError(403)
            return handler(*args, **kwargs)
        return guarded
    return decorate


def _original(app: Bottle, rule: str, method: str = "GET") -> t.Callable:
    return next(route.call for route in app.routes if route.rule == rule and route.method == method)


FILES_KEY = "\x00files"  # the map of served files, kept beside the pages: no project name holds a NUL


def _versions(packages: t.Iterable[t.Any]) -> list[str]:
    ordered: dict[str, None] = {}
    for pkg in packages:
        ordered.setdefault(canonical_version(pkg.version), None)
    return list(ordered)


class SimpleRoutes:
    def __init__(self, config: t.Any, yanks: YankStore | None, metadata: MetadataCache,
                 states: VersionStates | None = None) -> None:
        self.config = config
        self.yanks = yanks
        self.metadata = metadata
        self.states = states  # what is sealed: a seal or a take-back changes the pages, not the folder
        self.cache = PageCache((Path(root).resolve() for root in config.roots), watch=FolderWatch.open())
        self.pypiserver: dict[str, t.Callable] = {}  # its handlers of the routes below, by install()

    def records(self) -> int | None:
        """The generation of the version records, which every kept page depends on."""
        return self.states.generation() if self.states is not None else None

    def packages(self, project: str, pinned: dict[str, str] | None = None) -> list[t.Any]:
        """The files of ``project`` the index serves; with ``pinned`` (file name -> sha256: what a channel
        promoted), exactly those, each with that sha256, else PinBroken."""
        found = sorted(self.config.backend.find_project_packages(project), key=lambda p: (p.parsed_version, p.relfn))
        if pinned is None:
            return found
        by_name = {pkg.relfn_unix.rsplit("/", 1)[-1]: pkg for pkg in found}
        for filename, sha256 in sorted(pinned.items()):
            pkg = by_name.get(filename)
            if pkg is None:
                raise PinBroken(f"{filename} is gone")
            digest = pkg.digest or self.config.backend.digest(pkg)
            if digest != f"sha256={sha256}":
                raise PinBroken(f"{filename} changed (sha256 {(digest or '').removeprefix('sha256=')[:16]}..., "
                                f"promoted {sha256[:16]}...)")
        return [pkg for pkg in found if pkg.relfn_unix.rsplit("/", 1)[-1] in pinned]

    def core_metadata(self, pkg: t.Any) -> CoreMetadata | None:
        """A wheel's metadata, keyed by the digest the backend already knows (no hashing here)."""
        if not pkg.relfn.endswith(".whl"):
            return None
        digest = pkg.digest or self.config.backend.digest(pkg)
        if not digest or not digest.startswith("sha256="):
            return None
        return self.metadata.of(Path(pkg.fn), digest.removeprefix("sha256="))

    def served(self, filename: str) -> t.Any | None:
        """The file the index serves as ``/packages/<filename>`` (its path under the package folder), or None."""
        return self.cache.page(FILES_KEY, "by-name", {}, self._by_name, self.records()).get(filename)

    def _by_name(self) -> tuple[list[str], dict[str, t.Any]]:
        by_name: dict[str, t.Any] = {}
        for pkg in self.config.backend.get_all_packages():
            by_name.setdefault(pkg.relfn_unix, pkg)  # pypiserver serves the first of two roots' same name
        return [], by_name  # a file rewritten in place keeps its name: only the folders' changes matter

    def metadata_file(self, filename: str, fallback: t.Callable) -> t.Any:
        """``<wheel>.metadata`` (PEP 658), or the file, as pypiserver serves it; ``fallback`` (pypiserver's
        handler, which lists the folder) answers a name not in the map: its 404."""
        wheel = filename.removesuffix(".metadata")
        pkg = self.served(wheel)
        if wheel != filename:
            found = self.core_metadata(pkg) if pkg is not None else None
            if found is None:
                return fallback(filename)
            response.content_type = "application/octet-stream"
            return found.content
        if pkg is None:
            return fallback(filename)
        served = static_file(filename, root=pkg.root, mimetype=mimetypes.guess_type(filename)[0])
        if self.config.cache_control:
            served.set_header("Cache-Control", f"public, max-age={self.config.cache_control}")
        return served

    def files(self, project: str, packages: list[t.Any]) -> list[pages.File]:
        yanked = self.yanks.reasons(project) if self.yanks else {}
        served = []
        for pkg in packages:
            digest = pkg.digest or self.config.backend.digest(pkg)
            stat = os.stat(pkg.fn)
            served.append(pages.File(
                filename=pkg.relfn_unix.rsplit("/", 1)[-1], href=f"../../packages/{pkg.relfn_unix}",
                sha256=digest.removeprefix("sha256=") if digest and digest.startswith("sha256=") else None,
                metadata=self.core_metadata(pkg), yanked=yanked.get(canonical_version(pkg.version)),
                size=stat.st_size, mtime=stat.st_mtime))
        return served

    def project_page(self, project: str, fallback: t.Callable) -> t.Any:
        if project != normalize_pkgname_for_url(project):
            if owned(project) and not self.packages(project):
                return _not_here(project)
            return fallback(project)  # pypiserver's redirect to the normalised name
        body = self.page(project)
        if body is None:
            return _not_here(project) if owned(project) else fallback(project)  # pypiserver's fallback or 404
        return body

    def page(self, project: str, pinned: dict[str, str] | None = None, key: str | None = None) -> t.Any:
        """The page of ``project`` (``pinned``: of those files only, kept under ``key``) in the form the
        request's Accept header prefers, from the cache; None when it lists no file."""
        form = "json" if pages.wants_json(request.headers.get("Accept")) else "html"
        yanked = self.yanks.reasons(project) if self.yanks else {}
        key = key or project
        body = self.cache.page(key, form, yanked, lambda: self.render(project, form, pinned), self.records())
        if body is None:
            return None
        response.set_header("Vary", "Accept")
        if form == "json":
            response.content_type = pages.JSON_TYPE
        return body.served()

    def render(self, project: str, form: str, pinned: dict[str, str] | None = None) -> tuple[list[str], KeptPage | None]:
        """(the files listed, the page; None when the index holds no file of ``project``).

        Encoded once here, so a cached page of thousands of versions goes out as it is kept (KeptPage)."""
        packages = self.packages(project, pinned)
        if not packages:
            return [], None
        files = self.files(project, packages)
        body = (pages.project_json(project, _versions(packages), files) if form == "json"
                else pages.project_html(project, files))
        return [pkg.fn for pkg in packages], KeptPage(body.encode())

    def legacy_json(self, project: str, fallback: t.Callable, pinned: dict[str, str] | None = None) -> t.Any:
        """Rendered on each request: pip-compile asks it once per project it pins."""
        if project != normalize_pkgname_for_url(project):
            return fallback(project)  # pypiserver's redirect to the normalised name
        packages = self.packages(project, pinned)
        if not packages:
            return _not_here(project)
        releases: dict[str, list[pages.File]] = {}
        for pkg, served in zip(packages, self.files(project, packages)):
            releases.setdefault(canonical_version(pkg.version), []).append(served)
        response.content_type = "application/json"
        return pages.legacy_json(project, releases, urljoin(request.url, f"../simple/{project}/"))

    def index_page(self, fallback: t.Callable) -> t.Any:
        response.set_header("Vary", "Accept")
        if not pages.wants_json(request.headers.get("Accept")):
            return fallback()
        response.content_type = pages.JSON_TYPE
        return pages.index_json(sorted(self.config.backend.get_projects()))

    def yank(self, yanking: bool) -> str:
        project = request.forms.get("name") or ""
        version = canonical_version(request.forms.get("version") or "")
        # A yank without a reason field keeps the reason of a version already yanked (PEP 592 allows "").
        reason = request.forms.getunicode("reason") if yanking else None
        response.content_type = "application/json"
        published = _versions(self.packages(normalize_pkgname_for_url(project))) if project else []
        if self.yanks is None:
            response.status = 501
            return json.dumps({"error": "this index runs without a state folder; start it with make index (or set INDEX_STATE)"})
        if version not in published:
            response.status = 404
            return json.dumps({"error": f"{project} {version} is not on this index", "versions": published})
        problem = reason_too_long(reason)
        if problem:
            response.status = 400
            return json.dumps({"error": problem})
        try:
            if yanking and reason is None:
                before = self.yanks.yank_keeping_reason(project, version)
            else:
                before = self.yanks.set(project, version, reason)
            self.cache.forget()
        except DamagedYankFile as exc:
            response.status = 500
            return json.dumps({"error": str(exc)})
        yanked = self.yanks.reasons(project)
        return json.dumps({"name": project, "version": version, "yanked": yanked.get(version, False),
                           "previous": before, "versions": published,
                           "not_yanked": [v for v in published if v not in yanked]})


class KeptPage:
    """A rendered page as the cache keeps it: in an anonymous in-memory file (``memfd``), which the server
    sends as it sends a package file, with ``os.sendfile`` (index/sendfile.py); as bytes where there is none.

    Handed to waitress as bytes, a page was copied whole into the connection's output buffer and sent from
    Python a socket buffer (16 KiB) at a time: ~100 rounds for the 1.6 MB page of 3,000 versions, 0.3-0.6 ms
    more of the server's CPU per request than at 100 versions, and the client (woken on the server's core)
    read the headers after them: 1.5x the time until the headers at 100 versions. Each request opens the
    file anew, with its own offset."""

    def __init__(self, body: bytes) -> None:
        self.size = len(body)
        self._descriptor = _memfd(body)
        self._body = body if self._descriptor is None else None
        if self._descriptor is not None:
            weakref.finalize(self, os.close, self._descriptor)

    def served(self) -> t.BinaryIO:
        """The page as the response's body (bottle hands a file to ``wsgi.file_wrapper``)."""
        response.set_header("Content-Length", str(self.size))
        if self._descriptor is None:
            return io.BytesIO(self._body)  # shares the bytes, copies nothing
        try:
            return open(f"/proc/self/fd/{self._descriptor}", "rb", buffering=0)
        except OSError:  # no descriptor left: a copy
            return io.BytesIO(os.pread(self._descriptor, self.size, 0))


def _memfd(body: bytes) -> int | None:
    """An anonymous in-memory file holding ``body``; None where there is none."""
    try:
        descriptor = os.memfd_create("index-page", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return None
    try:
        with memoryview(body) as view:
            written = 0
            while written < len(view):
                written += os.write(descriptor, view[written:])
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


class PinBroken(Exception):
    """A file a channel promoted is gone or has other bytes: the channel serves nothing of it."""


def _not_here(project: str) -> HTTPError:
    return HTTPError(404, f"Not Found ({project} is not on this index, and the index never looks it up elsewhere)")


def install(app: Bottle, yanks: YankStore | None, metadata: MetadataCache,
            states: VersionStates | None = None) -> SimpleRoutes:
    """Add our pages and actions to pypiserver's app (built by ``pypiserver.app``)."""
    config = app._pypiserver_config
    routes = SimpleRoutes(config, yanks, metadata, states)
    pypiserver_project_page = _original(app, "/simple/:project/")
    pypiserver_file = _original(app, "/packages/:filename#.*#")
    pypiserver_index = _original(app, "/simple/")
    pypiserver_json = _original(app, "/:project/json")
    # pypiserver's own handlers, which the channel views (index/channel_routes.py) fall back on as these routes do
    routes.pypiserver = {"index": pypiserver_index, "project": pypiserver_project_page, "file": pypiserver_file,
                         "json": pypiserver_json}
    app.route("/simple/", "GET", protected(config, "list")(lambda: routes.index_page(pypiserver_index)))
    app.route("/packages/:filename#.*#", "GET",
              protected(config, "download")(lambda filename: routes.metadata_file(filename, pypiserver_file)))
    app.route("/simple/:project/", "GET",
              protected(config, "list")(lambda project: routes.project_page(project, pypiserver_project_page)))
    app.route("/:project/json", "GET",
              protected(config, "list")(lambda project: routes.legacy_json(project, pypiserver_json)))
    app.route("/+yank", "POST", protected(config, "update")(lambda: routes.yank(True)))
    app.route("/+unyank", "POST", protected(config, "update")(lambda: routes.yank(False)))
    return routes
