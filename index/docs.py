"""``GET /docs/...``: the documentation site ``make docs`` built (the repository's site/), read-only.

The index is where a consumer already looks (its registry page links here), so it serves the
same pages a developer reads with ``make docs-serve``. Files come from one folder only: a path
with ``..``, a hidden name or a symbolic link anywhere in it is not served (404), a folder
answers its index.html (without its trailing slash: a redirect, so the pages' relative links
work), and an index whose site was never built says how to build it. Guarded like the registry
page: with INDEX_AUTH=read it needs the credentials.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from pypiserver.bottle_wrapper import Bottle, HTTPError, redirect, request, static_file

PREFIX = "docs"
# The site's own pages run Material's scripts (search, navigation) from the site itself: nothing
# from elsewhere, no framing.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'")
NOT_BUILT = ("The documentation is not built on this index's machine: run make docs in the repository "
             "(it writes site/), then reload this page.")


def site_file(root: Path, path: str) -> Path | None:
    """The file ``path`` names inside ``root``, or None when it is outside, hidden, behind a symbolic
    link or missing. A folder's file is its index.html.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "consume").mkdir(); _ = (root / "consume" / "index.html").write_text("ok")
    >>> [site_file(root, p) is not None for p in ("consume/", "consume/index.html", "../etc/passwd", ".git/x", "nope")]
    [True, True, False, False, False]
    """
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") or part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
        return None
    found = root
    for part in parts:
        found = found / part
        if found.is_symlink():
            return None
    if found.is_dir():
        found = found / "index.html"
        if found.is_symlink():
            return None
    if not found.is_file() or root.resolve() not in found.resolve().parents:
        return None
    return found


class DocsRoutes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def serve(self, path: str = "") -> t.Any:
        if not self.root.is_dir():
            raise HTTPError(404, NOT_BUILT)
        found = site_file(self.root, path)
        if found is None:
            raise HTTPError(404, f"/{PREFIX}/{path} is not a page of the documentation")
        if found.name == "index.html" and path and not path.endswith("/") and not path.endswith("index.html"):
            redirect(f"{request.script_name}{PREFIX}/{path}/", 301)
        served = static_file(found.relative_to(self.root).as_posix(), root=str(self.root))
        served.set_header("X-Content-Type-Options", "nosniff")
        served.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        served.set_header("Cache-Control", "no-cache")
        return served

    def to_folder(self) -> None:
        redirect(f"{request.script_name}{PREFIX}/", 301)


def install(app: Bottle, root: Path) -> DocsRoutes:
    from index.simple import protected

    config = app._pypiserver_config
    routes = DocsRoutes(root)
    app.route(f"/{PREFIX}", "GET", protected(config, "list")(routes.to_folder))
    app.route(f"/{PREFIX}/", "GET", protected(config, "list")(routes.serve))
    app.route(f"/{PREFIX}/<path:path>", "GET", protected(config, "list")(routes.serve))
    return routes
