"""The registry pages on the index: the model packages, every version of each, its metrics, status and install line.

``GET /registry/<project>/`` lists a model package's complete versions newest first
with a chart of each model's gated metric (``?metric=`` any other it recorded);
``GET /registry/<project>/<version>/`` shows one version (card, metrics, evaluation
figures, schema, lineage, files, the contract diff to the previous version), its figures
at ``<version>/<model>/figures/<kind>.svg`` (index/registry/figures.py);
``GET /registry/<project>/compare/<A>/<B>/`` shows two versions side by side
(index/registry/compare.py). ``GET /`` lists the model packages (name, newest version,
data tag, headline metric, status, install line) when the index holds several, and is
the one package's page when it holds one (or none: how to publish the first). Read-only,
and guarded like the simple pages: with INDEX_AUTH=read they need the credentials.
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

from index.channels import PAGE_SIZE, ChannelStore  # noqa: E402
from index.pagecache import PageCache  # noqa: E402
from index.registry import compare, figures, views  # noqa: E402
from index.registry.facts import FactsCache  # noqa: E402
from index.registry.releases import ModelPackage, Release, model_packages, releases  # noqa: E402
from index.statedb import StateError  # noqa: E402
from index.audit import RECENT, AuditLog  # noqa: E402
from index.yanks import YankStore, canonical_version  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402

from index import owned_package  # noqa: E402

contract = owned_package.module("contract")
Snapshot, diff, required_bump = contract.Snapshot, contract.diff, contract.required_bump
FACTS_FOLDER = "registry"  # in the state folder: each wheel's facts by the wheel's sha256
# Where the page's own address goes: one kept page answers every Host a client names
# (a page kept per Host would let any client grow the index's memory). Escaping leaves it as it is.
ADDRESS = "\x00simple-url\x00"
# The page cache's key for the list of model packages: no project's name holds a NUL.
PACKAGES_KEY = "\x00model packages"
# Where the package page's channels go: read on each request (a promotion is no change of the
# index folder, and another worker may have made it), so never kept in the cached page.
CHANNELS = "\x00channels\x00"
# Where a package page's recent audit entries go (index/audit.py): read on each request, like the channels.
AUDIT = "\x00audit\x00"


def snapshot(release: Release) -> Snapshot:
    facts = release.facts
    return Snapshot(release.version, facts.models, facts.model_sha256, facts.release, facts.requires)


class RegistryRoutes:
    """The pages, kept in the simple pages' cache: listing thousands of files on every
    request (~0.2 ms a version) is what the cache saves; the releases are listed and the
    registry page rendered once per change of the index folder or of the yanks."""

    def __init__(self, config: t.Any, yanks: YankStore | None, facts: FactsCache, pages: PageCache,
                 project: str | None = None, channels: ChannelStore | None = None,
                 records: t.Callable[[], int | None] = lambda: None, audit: AuditLog | None = None,
                 hidden: t.Callable[[], frozenset[tuple[str, str]]] = frozenset) -> None:
        self.config = config
        self.audit = audit  # the recent writes shown on a package's page
        self.hidden = hidden  # (project, version) served nowhere yet (staged) or any more (taken back)
        self.records = records  # the version records' generation: a seal shows a version without a folder change
        self.channels = channels  # the promotions, shown on the package's page
        self.yanks = yanks
        self.facts = facts
        self.pages = pages
        self.project = project or owned_package.name()  # the package the page is about

    def _kept(self, project: str, form: str, render: t.Callable[[list[Release]], t.Any]) -> t.Any:
        yanked = self.yanks.reasons(project) if self.yanks else {}

        def listed() -> tuple[list[str], t.Any]:
            found = releases(self.config.backend, project, self.yanks, self.facts)
            return [p for r in found for p in (r.wheel.fn, r.sdist.fn)], render(found)
        return self.pages.page(project, form, yanked, listed, self.records())

    def releases(self, project: str | None = None) -> list[Release]:
        return self._kept(project or self.project, "registry releases", lambda found: found)

    def _kept_packages(self, form: str, render: t.Callable[[list[ModelPackage]], t.Any]) -> t.Any:
        """Kept until the index folder or any project's yanks change: one listing of the index a change."""
        yanked = self.yanks.every_reason() if self.yanks else {}

        def listed() -> tuple[list[str], t.Any]:
            found = model_packages(self.config.backend, self.yanks, self.facts, self.project)
            return [p for package in found for r in package.releases for p in (r.wheel.fn, r.sdist.fn)], render(found)
        return self.pages.page(PACKAGES_KEY, form, yanked, listed, self.records())

    def packages(self) -> list[ModelPackage]:
        return self._kept_packages("model packages", lambda found: found)

    def _respond(self) -> str:
        response.content_type = "text/html; charset=utf-8"
        response.set_header("Content-Security-Policy", views.CONTENT_SECURITY_POLICY)
        response.set_header("X-Content-Type-Options", "nosniff")
        response.set_header("Cache-Control", "no-cache")
        return self.simple_url()

    def simple_url(self) -> str:
        parts = request.urlparts
        return f"{parts.scheme}://{parts.netloc}{request.script_name}simple/"

    def _chart_metric(self, releases: list[Release]) -> str | None:
        """The ``?metric=`` a package page charts: one its versions recorded (no other is kept), else None."""
        wanted = request.query.get("metric")
        return wanted if wanted and wanted in views.recorded_metrics(releases) else None

    def registry_page(self) -> bytes:
        """``/``: the list of model packages, or the one package's page."""
        simple_url = self._respond()
        found = self.packages()
        metric = self._chart_metric(found[0].releases) if len(found) == 1 else None

        def render(found: list[ModelPackage]) -> bytes:
            if len(found) > 1:
                return views.packages_html(found, ADDRESS).encode()
            project, listed = (found[0].project, found[0].releases) if found else (self.project, [])
            return views.registry_html(project, listed, ADDRESS, channels=CHANNELS if project == self.project else "",
                                       metric=metric, audit=AUDIT).encode()
        project = found[0].project if len(found) == 1 else self.project
        return self._filled(self._kept_packages(f"registry page {metric or ''}", render), simple_url, project)

    def _filled(self, page: bytes, simple_url: str, project: str) -> bytes:
        """A kept page with this request's address, the channels and ``project``'s recent audit entries as
        they are now."""
        histories, totals = self._histories()
        page = page.replace(ADDRESS.encode(), views.e(simple_url).encode()).replace(
            CHANNELS.encode(), views.channels_html(histories, simple_url, self.project, totals).encode())
        if AUDIT.encode() not in page:
            return page
        return page.replace(AUDIT.encode(), views.audit_html(self._recent(project)).encode())

    def _recent(self, project: str) -> list | str:
        """``project``'s newest audit entries (its twins' too) of versions the index serves, or why they cannot
        be read."""
        if self.audit is None:
            return []
        try:
            hidden = self.hidden()  # a release in progress shows nowhere, its audit entries neither
            return [entry for entry in self.audit.entries(project, limit=RECENT)
                    if (entry.project, entry.version) not in hidden]
        except StateError as exc:
            return str(exc)

    def _histories(self) -> tuple[dict[str, list] | str, dict[str, int]]:
        """Each channel's newest promotions and how many it has, or why they cannot be shown."""
        if self.channels is None:
            return {}, {}
        try:
            totals = self.channels.totals()
            return {name: self.channels.history(name, PAGE_SIZE) for name in totals}, totals
        except StateError as exc:
            return str(exc), {}

    def _model_package(self, project: str) -> str:
        """``project``'s canonical name when it is this index's package or a model package on it (else: 404,
        before anything is kept for a name a client made up)."""
        canonical = canonicalize_name(project)
        if canonical != self.project and all(package.project != canonical for package in self.packages()):
            raise HTTPError(404, f"{project} is no model package on this index")
        return canonical

    def package_page(self, project: str) -> bytes:
        simple_url = self._respond()
        project = self._model_package(project)
        metric = self._chart_metric(self.releases(project))
        page = self._kept(project, f"package page {metric or ''}", lambda releases: views.registry_html(
            project, releases, ADDRESS, root="../../", channels=CHANNELS if project == self.project else "",
            metric=metric, audit=AUDIT).encode())
        return self._filled(page, simple_url, project)

    def _release(self, project: str, version: str) -> tuple[list[Release], int]:
        """The complete versions of ``project`` (a model package, else 404) and the position of ``version`` (404)."""
        found = self.releases(self._model_package(project))
        wanted = canonical_version(version)
        index = next((i for i, release in enumerate(found) if release.version == wanted), None)
        if index is None:
            raise HTTPError(404, f"{project} {version} is not on this index")
        return found, index

    def figure(self, project: str, version: str, model: str, filename: str) -> bytes:
        """One figure a version's wheel lists, as an image that runs nothing (index/registry/figures.py)."""
        found, index = self._release(project, version)
        content = figures.read(found[index], model, filename)
        if content is None:
            raise HTTPError(404, f"{version} has no figure {model}/figures/{filename}")
        response.content_type = "image/svg+xml"
        response.set_header("Content-Security-Policy", figures.FIGURE_POLICY)
        response.set_header("X-Content-Type-Options", "nosniff")
        response.set_header("Cache-Control", "no-cache")
        return content

    def compare_page(self, project: str, a: str, b: str) -> str:
        """Two versions side by side (index/registry/compare.py)."""
        project = self._model_package(project)
        (found, first), (_, second) = self._release(project, a), self._release(project, b)
        self._respond()
        old, new = found[first], found[second]
        unreadable = next((r for r in (old, new) if r.facts.problem), None)
        if unreadable is not None:
            changes: list[tuple[str, str]] | str = f"no diff: {unreadable.version} cannot be read"
            bump = None
        else:
            found_changes = diff(snapshot(old), snapshot(new))
            changes, bump = [(c.group, c.text) for c in found_changes], required_bump(found_changes)
        return compare.compare_html(project, old, new, changes, bump, root="../../../../../")

    def version_page(self, project: str, version: str) -> str:
        project = self._model_package(project)
        found, index = self._release(project, version)
        simple_url = self._respond()
        release = found[index]
        previous = found[index + 1] if index + 1 < len(found) else None
        changes: list[tuple[str, str]] | str | None = None
        unreadable = next((r for r in (release, previous) if r is not None and r.facts.problem), None)
        if unreadable is not None and previous is not None:
            changes = f"no diff: {unreadable.version} cannot be read"
        elif previous is not None:
            changes = [(c.group, c.text) for c in diff(snapshot(previous), snapshot(release))]
        return views.version_html(project, release, changes, previous.version if previous else None,
                                  simple_url, root="../../../")


def install(app: Bottle, yanks: YankStore | None, state_dir: Path | None, pages: PageCache,
            project: str | None = None, channels: ChannelStore | None = None,
            records: t.Callable[[], int | None] = lambda: None, facts: FactsCache | None = None,
            audit: AuditLog | None = None,
            hidden: t.Callable[[], frozenset[tuple[str, str]]] = frozenset) -> RegistryRoutes:
    """Serve the registry pages on pypiserver's app: ``/`` replaces its welcome text."""
    from index.simple import protected

    config = app._pypiserver_config
    project = project or owned_package.name()
    folder = project.replace("-", "_")  # the package's folder in its wheels
    facts = facts or FactsCache(state_dir / FACTS_FOLDER if state_dir else None, folder)
    routes = RegistryRoutes(config, yanks, facts, pages, project, channels, records, audit, hidden)
    app.route("/", "GET", protected(config, "list")(routes.registry_page))
    app.route("/registry/<project>/", "GET", protected(config, "list")(routes.package_page))
    app.route("/registry/<project>/<version>/", "GET", protected(config, "list")(routes.version_page))
    app.route("/registry/<project>/compare/<a>/<b>/", "GET", protected(config, "list")(routes.compare_page))
    app.route("/registry/<project>/<version>/<model>/figures/<filename>", "GET", protected(config, "list")(routes.figure))
    return routes
