"""Run pypiserver with the digest-caching backend under waitress.

``python -m index.server --port 8080 --root index/packages --htpasswd FILE``.
Usually started by ``python -m index start`` (``make index``), which also
makes the credentials and waits for /health. For several worker processes
under gunicorn, use the WSGI factory: see docs/running-the-index.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing as t
from collections.abc import Sequence
from pathlib import Path

from pypiserver.backend import BackendProxy

from index import control, owned_package
from index.settings import (ABANDONED_AFTER, CHANNEL_TIMEOUT, CLEANUP_INTERVAL, CONNECTION_LIMIT, DOCS_SITE,
                            HEADER_LIMIT, PACKAGE)

METADATA_FOLDER = "core-metadata"  # in the state folder: each wheel's METADATA by the wheel's sha256
AUTH_ACTIONS = {"update": ["update"], "read": ["update", "download", "list"]}
# waitress moves a response bigger than this from memory to a temporary file; the registry
# page or legacy JSON of a project with thousands of versions is a few MB (its kept simple
# pages go out as files: index/simple.py's KeptPage).
OUTBUF_OVERFLOW = 16 * 2**20


def make_app(root: Path, htpasswd: Path, auth: str = "update", fallback: bool = True,
             digest_cache: Path | None = None, state_dir: Path | None = None, docs: Path = DOCS_SITE,
             abandoned_after: float = ABANDONED_AFTER):
    """The pypiserver WSGI app serving ``root``, with our backend, auther, pages, registry page and
    the documentation site ``docs`` (make docs's site/) at /docs/.

    ``state_dir`` keeps the yanks, the version records and channels (index/statedb.py) and the wheels'
    core metadata (default: the digest cache's folder); without one, uploads are served as they
    arrive and there are no channels. ``abandoned_after``: seconds after its last upload that an
    unsealed version counts as abandoned (index/release_routes.py)."""
    import pypiserver
    from pypiserver.config import Config

    from index.access import CredentialAuther, adopt_htpasswd
    from index.audit import AuditLog
    from index.auth import CachedHtpasswdAuther, refuse_writes_by
    from index.guard import BodyGuard
    from index import channel_routes, docs as docs_routes, enforce, registry, release_routes, simple
    from index.channels import CHANNELS_FOLDER, ChannelStore
    from index.digests import DigestCachingBackend, remove_stale_partials
    from index.metadata import MetadataCache
    from index.numbers import VersionStates
    from index.registry.facts import FactsCache
    from index.settings import INDEX_READER
    from index.statedb import StateDB
    from index.yanks import YANKS_FILE, YankStore

    root.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(root)
    # pypiserver.app(**settings) first builds a default config whose "auto" backend starts watchdog's observer
    # thread when watchdog is installed (MkDocs needs it): start from the plain folder backend instead, which
    # our own replaces below anyway.
    state_dir = state_dir or (digest_cache.parent if digest_cache else None)
    db = StateDB(state_dir) if state_dir else None
    if db is not None:  # credentials with roles and scopes (index/access.py), an older htpasswd adopted once
        adopt_htpasswd(db, htpasswd, INDEX_READER)
        auther: t.Any = CredentialAuther(db)
        read_only: t.Callable[[str], bool] = auther.read_only
    else:
        auther, read_only = CachedHtpasswdAuther(htpasswd), {INDEX_READER}.__contains__
    settings = dict(roots=[root], password_file=str(htpasswd), authenticate=AUTH_ACTIONS[auth],
                    auther=auther, disable_fallback=not fallback, hash_algo="sha256",
                    overwrite=False)
    config = Config.from_args(["run", "--backend", "simple-dir"]).with_updates(**settings)
    app = pypiserver.setup_routes_from_config(pypiserver.app_from_config(config), config)
    app.add_hook("before_request", refuse_writes_by(read_only))
    states = VersionStates(db) if db else None
    backend = DigestCachingBackend(config, digest_cache, states)
    app.add_hook("after_request", backend.save)  # bottle hook: persist digests hashed by this request
    if states is not None:
        states.record_existing(lambda: _owned_files(backend))
    yanks = YankStore(state_dir / YANKS_FILE) if state_dir else None
    routes = simple.install(app, yanks, MetadataCache(state_dir / METADATA_FOLDER if state_dir else None), states)
    pages = routes.cache
    facts = FactsCache(state_dir / registry.FACTS_FOLDER if state_dir else None, owned_package.import_name())
    channels = ChannelStore(db) if db else None
    if channels is not None:
        channels.copy_histories(state_dir / CHANNELS_FOLDER, lambda version: _pins(backend, version))
    channel_routes.install(app, routes, channels, states, lambda wheel: _built_from(facts, backend, wheel))
    audit = AuditLog(db) if db else None
    registry.install(app, yanks, state_dir, pages, channels=channels, records=routes.records, facts=facts, audit=audit,
                     hidden=states.hidden if states is not None else frozenset)
    if states is not None:
        release_routes.install(app, backend, states, pages.forget, abandoned_after)
    docs_routes.install(app, docs)
    if db is not None:
        enforce.install(app, auther, db, audit, backend.stored_sha256)
    config.backend = _ForgettingPages(backend, pages.forget)  # what pypiserver's handlers and our routes use
    app.body_guard = BodyGuard(auther, read_only)  # main() puts it in front of waitress's body reading
    return app


def _owned_files(backend: t.Any) -> list[tuple[str, str, str, float]]:
    """(project, version, kind, mtime) of every file of the index's own projects in the folder."""
    from index.uploads import UploadRefused, slot

    found = []
    for pkg in backend.listed():
        try:
            place = slot(Path(pkg.fn).name)
        except UploadRefused:
            continue  # placed by hand under a name no upload has: nothing to record
        if place is not None:
            found.append((place.project, str(place.version), place.kind, os.stat(pkg.fn).st_mtime))
    return found


def _pins(backend: t.Any, version: str) -> dict[str, dict[str, str]]:
    """Project -> {file: sha256} of what a release of ``version`` has on the index now."""
    from index.numbers import in_release
    from index.yanks import canonical_version

    pins: dict[str, dict[str, str]] = {}
    for pkg in backend.get_all_packages():
        if in_release(pkg.pkgname_norm) and canonical_version(pkg.version) == version:
            pins.setdefault(pkg.pkgname_norm, {})[Path(pkg.fn).name] = (backend.digest(pkg) or "").removeprefix("sha256=")
    return pins


def _built_from(facts: t.Any, backend: t.Any, wheel: t.Any) -> str:
    """The commit a wheel's models were built from, as their metadata records it."""
    from index.registry.releases import import_name

    digest = (backend.digest(wheel) or "").removeprefix("sha256=")
    package = import_name(Path(wheel.fn).name)
    found = facts.of(wheel.fn, digest, package) if digest and package else None
    return owned_package.module("published").built_from(found.models if found else {})


class _ForgettingPages(BackendProxy):
    """An upload or a removal through this server drops the kept pages at once, whatever the
    folder watch has seen (it may be setting itself up again after the folder was replaced)."""

    def __init__(self, backend: t.Any, forget: t.Callable[[], None]) -> None:
        super().__init__(backend)
        self._forget = forget

    def add_package(self, filename: str, stream: t.BinaryIO) -> None:
        super().add_package(filename, stream)
        self._forget()

    def remove_package(self, pkg: t.Any) -> None:
        try:
            super().remove_package(pkg)
        finally:  # some of the version's files may be gone even when one failed
            self._forget()


def wsgi_app():
    """For gunicorn: ``gunicorn -w 4 -b 127.0.0.1:8080 'index.server:wsgi_app()'``,
    configured by INDEX_DIR, INDEX_HTPASSWD, INDEX_AUTH, INDEX_STATE (the yanks) and INDEX_PACKAGE. No
    digest cache file: several workers would overwrite each other's."""
    state = os.environ.get("INDEX_STATE")
    owned_package.configure(os.environ.get("INDEX_PACKAGE") or PACKAGE)
    return make_app(Path(os.environ["INDEX_DIR"]), Path(os.environ["INDEX_HTPASSWD"]),
                    os.environ.get("INDEX_AUTH", "update"), os.environ.get("INDEX_FALLBACK", "on") != "off",
                    state_dir=Path(state) if state else None, abandoned_after=control.abandoned_after())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True, help="folder of package files")
    parser.add_argument("--htpasswd", type=Path, required=True)
    parser.add_argument("--auth", choices=sorted(AUTH_ACTIONS), default="update")
    parser.add_argument("--no-fallback", action="store_true", help="404 for unknown projects")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--digest-cache", type=Path, help="a JSON file that keeps the digests across restarts")
    parser.add_argument("--package", default=PACKAGE,
                        help="the model package this index owns (and its <package>-<channel> projects)")
    parser.add_argument("--docs", type=Path, default=DOCS_SITE, help="the built documentation site, served at /docs/")
    parser.add_argument("--channel-timeout", type=int, default=CHANNEL_TIMEOUT,
                        help="close a connection idle for this many seconds")
    parser.add_argument("--abandoned-after", type=float, default=None,
                        help="seconds after its last upload that an unsealed version is abandoned "
                             f"(default: INDEX_ABANDONED_AFTER, else {ABANDONED_AFTER})")
    args = parser.parse_args(argv)

    import logging

    import waitress

    from index.guard import guarded_channel
    from index.statedb import StateError

    owned_package.configure(args.package)  # before make_app imports the registry, which reads it
    try:
        app = make_app(args.root, args.htpasswd, args.auth, fallback=not args.no_fallback,
                       digest_cache=args.digest_cache, docs=args.docs,
                       abandoned_after=control.abandoned_after() if args.abandoned_after is None else args.abandoned_after)
    except StateError as exc:  # one line in server.log, which make index shows
        print(f"index: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    guard = app.body_guard
    if os.environ.get("INDEX_REQUEST_LOG"):
        from index.requestlog import logged

        app = logged(app, os.environ["INDEX_REQUEST_LOG"])
    _allow_open_files(CONNECTION_LIMIT + 200)  # each connection is a file descriptor
    # Idle or half-sent connections are closed after CHANNEL_TIMEOUT and cannot fill the
    # connection limit (waitress's 100, idle for 300 s, left /health unanswered); poll(),
    # unlike select(), takes descriptors past 1024.
    server = waitress.create_server(
        app, host=args.host, port=args.port, threads=args.threads, ident=f"{owned_package.name()}-index",
        connection_limit=CONNECTION_LIMIT, channel_timeout=args.channel_timeout,
        cleanup_interval=min(CLEANUP_INTERVAL, args.channel_timeout), asyncore_use_poll=True,
        outbuf_overflow=OUTBUF_OVERFLOW, max_request_header_size=HEADER_LIMIT)
    server.channel_class = guarded_channel(guard)  # a body is read only behind the upload credential
    server.handle_accept = types.MethodType(accept_waiting, server)
    logging.basicConfig()  # as waitress.serve does
    # waitress warns "Task queue depth is N" on every request queued behind its threads: a fleet of 1,000
    # clients wrote ~700 such lines per deploy into server.log, formatted on the event loop's thread. The
    # queue is bounded by the connection limit; its errors still show.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server.print_listen("Serving on http://{}:{}")
    server.run()
    return 0


ACCEPT_BATCH = 256  # connections taken from the listen queue per turn of the event loop


def accept_waiting(server: t.Any) -> None:
    """waitress's ``handle_accept``, taking every waiting connection (up to ACCEPT_BATCH and the connection
    limit) instead of one: each turn of its event loop asks every open connection what it waits for, so a
    fleet of 1,000 connecting at once cost 1,000 turns over a growing set (half a million questions)."""
    for _ in range(ACCEPT_BATCH):
        if len(server._map) >= server.adj.connection_limit:
            return
        try:
            pair = server.accept()
            if pair is None:
                return  # the queue is empty
            connection, address = pair
            server.set_socket_options(connection)
        except OSError:  # as waitress: a connection closed before it was taken is skipped
            if server.adj.log_socket_errors:
                server.logger.warning("server accept() threw an exception", exc_info=True)
            continue
        server.channel_class(server, connection, server.fix_addr(address), server.adj, map=server._map)


def _allow_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files towards ``wanted`` (up to the hard limit)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


if __name__ == "__main__":
    raise SystemExit(main())
