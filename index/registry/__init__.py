"""The registry page on the index: every version of the model package, its metrics, status and install line.

``GET /`` lists the complete versions newest first with a chart of each model's
accuracy; ``GET /registry/<project>/<version>/`` shows one version (card, metrics,
schema, lineage, files, the contract diff to the previous version). Read-only, and
guarded like the simple pages: with INDEX_AUTH=read they need the credentials.
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

# The contract diff and the validating reader of a wheel's JSON files ship in the package
# (src/<import name>/contract.py, published.py; stdlib only; index/owned_package.py); the index
# runs from the checkout, as the pipeline does (pipeline/__init__.py). Set before the modules below import them.
_SRC = str(Path(__file__).resolve().parents[2] / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

from pypiserver.bottle_wrapper import Bottle, HTTPError, request, response  # noqa: E402

from index.pagecache import PageCache  # noqa: E402
from index.registry import views  # noqa: E402
from index.registry.facts import FactsCache  # noqa: E402
from index.registry.releases import Release, releases  # noqa: E402
from index.yanks import YankStore, canonical_version  # noqa: E402
from index import owned_package  # noqa: E402

contract = owned_package.module("contract")
Snapshot, diff = contract.Snapshot, contract.diff
FACTS_FOLDER = "registry"  # in the state folder: each wheel's facts by the wheel's sha256
# Where the page's own address goes: one kept page answers every Host a client names
# (a page kept per Host would let any client grow the index's memory). Escaping leaves it as it is.
ADDRESS = "\x00simple-url\x00"


def snapshot(release: Release) -> Snapshot:
    facts = release.facts
    return Snapshot(release.version, facts.models, facts.model_sha256, facts.release, facts.requires)


class RegistryRoutes:
    """The pages, kept in the simple pages' cache: listing thousands of files on every
    request (~0.2 ms a version) is what the cache saves; the releases are listed and the
    registry page rendered once per change of the index folder or of the yanks."""

    def __init__(self, config: t.Any, yanks: YankStore | None, facts: FactsCache, pages: PageCache,
                 project: str | None = None) -> None:
        self.config = config
        self.yanks = yanks
        self.facts = facts
        self.pages = pages
        self.project = project or owned_package.name()  # the package the page is about

    def _kept(self, form: str, render: t.Callable[[list[Release]], t.Any]) -> t.Any:
        yanked = self.yanks.reasons(self.project) if self.yanks else {}

        def listed() -> tuple[list[str], t.Any]:
            found = releases(self.config.backend, self.project, self.yanks, self.facts)
            return [p for r in found for p in (r.wheel.fn, r.sdist.fn)], render(found)
        return self.pages.page(self.project, form, yanked, listed)

    def releases(self) -> list[Release]:
        return self._kept("registry releases", lambda found: found)

    def _respond(self) -> str:
        response.content_type = "text/html; charset=utf-8"
        response.set_header("Content-Security-Policy", views.CONTENT_SECURITY_POLICY)
        response.set_header("X-Content-Type-Options", "nosniff")
        response.set_header("Cache-Control", "no-cache")
        return self.simple_url()

    def simple_url(self) -> str:
        parts = request.urlparts
        return f"{parts.scheme}://{parts.netloc}{request.script_name}simple/"

    def registry_page(self) -> bytes:
        simple_url = self._respond()
        page = self._kept("registry page", lambda found: views.registry_html(self.project, found, ADDRESS).encode())
        return page.replace(ADDRESS.encode(), views.e(simple_url).encode())

    def version_page(self, project: str, version: str) -> str:
        found = self.releases() if project == self.project else []
        wanted = canonical_version(version)
        index = next((i for i, release in enumerate(found) if release.version == wanted), None)
        if index is None:
            raise HTTPError(404, f"{project} {version} is not on this index")
        simple_url = self._respond()
        release = found[index]
        previous = found[index + 1] if index + 1 < len(found) else None
        changes: list[tuple[str, str]] | str | None = None
        unreadable = next((r for r in (release, previous) if r is not None and r.facts.problem), None)
        if unreadable is not None and previous is not None:
            changes = f"no diff: {unreadable.version} cannot be read"
        elif previous is not None:
            changes = [(c.group, c.text) for c in diff(snapshot(previous), snapshot(release))]
        return views.version_html(self.project, release, changes, previous.version if previous else None,
                                  simple_url, root="../../../")


def install(app: Bottle, yanks: YankStore | None, state_dir: Path | None, pages: PageCache,
            project: str | None = None) -> RegistryRoutes:
    """Serve the registry pages on pypiserver's app: ``/`` replaces its welcome text."""
    from index.simple import protected

    config = app._pypiserver_config
    project = project or owned_package.name()
    folder = project.replace("-", "_")  # the package's folder in its wheels
    routes = RegistryRoutes(config, yanks, FactsCache(state_dir / FACTS_FOLDER if state_dir else None, folder),
                            pages, project)
    app.route("/", "GET", protected(config, "list")(routes.registry_page))
    app.route("/registry/<project>/<version>/", "GET", protected(config, "list")(routes.version_page))
    return routes
