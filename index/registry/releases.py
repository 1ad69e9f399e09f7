"""The complete versions of a project on this index, newest first, with what each wheel says.

A version is complete when the index holds both its wheel and its sdist (a release
that was cut short shows nowhere). Digests come from the backend's cache, the wheel
facts from ``FactsCache``: a render hashes and opens nothing it has seen before.
"""

from __future__ import annotations

import os
import re
import typing as t
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from index.registry.facts import FactsCache, WheelFacts
from index.yanks import YankStore, canonical_version
from index import owned_package

contract = owned_package.module("contract")
SHOWN_METRICS, task_of = contract.SHOWN_METRICS, contract.task_of

_IMPORT_NAME = re.compile(r"[a-z_][a-z0-9_]{0,99}")
KNOWN_METRICS = frozenset(key for shown in SHOWN_METRICS.values() for key, _ in shown)
TEAM_METRICS = 20  # of [evaluation] metrics, the most a page shows
METRIC_NAME_LIMIT = 100  # characters


@dataclass(frozen=True)
class PackageFile:
    filename: str
    path: str  # relative to the packages folder, as served under /packages/
    sha256: str | None
    size: int
    mtime: float
    fn: str  # where it is on disk


@dataclass(frozen=True)
class Release:
    version: str
    wheel: PackageFile
    sdist: PackageFile
    facts: WheelFacts
    yanked: str | None  # the reason; None: not yanked

    @property
    def data_tag(self) -> str | None:
        return Version(self.version).local

    @property
    def date(self) -> float:
        return self.wheel.mtime

    def metric(self, model: str, key: str) -> float | None:
        """A held-out or cross-validated metric of ``model`` (None where the wheel has none)."""
        metrics = self.facts.models.get(model, {}).get("metrics")
        return _number(metrics.get(key)) if isinstance(metrics, dict) else None

    def task(self, model: str) -> str:
        """``classification`` or ``regression``; anything else a wheel says counts as a classification."""
        task = task_of(self.facts.models.get(model, {}))
        return task if isinstance(task, str) and task in SHOWN_METRICS else "classification"

    def team_metrics(self) -> list[str]:
        """The metrics of ``[evaluation] metrics`` the models record (``f1_macro``, ``metrics:cost``), at most
        TEAM_METRICS of at most METRIC_NAME_LIMIT characters (a wheel is hostile input)."""
        names = sorted({key for meta in self.facts.models.values() if isinstance(meta, dict)
                        for key in contract.team_metrics(meta) if len(key) <= METRIC_NAME_LIMIT})
        return names[:TEAM_METRICS]

    @property
    def gate(self) -> tuple[str, bool]:
        """(metric, lower is better) the release gate compared: as the wheel recorded it (a task's own
        metric or one of the team's), else the task's default (accuracy, or R² when every model is a regressor)."""
        recorded = self.facts.release.get("gate")
        metric = recorded.get("metric") if isinstance(recorded, dict) else None
        if isinstance(metric, str) and (metric in KNOWN_METRICS or metric in self.team_metrics()):
            return metric, recorded.get("lower_is_better") is True
        regression = bool(self.facts.models) and all(self.task(m) == "regression" for m in self.facts.models)
        return ("r2" if regression else "accuracy"), False


def _number(value: t.Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def releases(backend: t.Any, project: str, yanks: YankStore | None, facts: FactsCache) -> list[Release]:
    """Every complete version of ``project``, newest first."""
    return releases_of(backend, backend.find_project_packages(project), project, yanks, facts)


def releases_of(backend: t.Any, packages: t.Iterable[t.Any], project: str, yanks: YankStore | None,
                facts: FactsCache) -> list[Release]:
    """Every complete version among ``packages`` (the files of ``project``), newest first."""
    files: dict[str, dict[str, t.Any]] = {}
    for pkg in packages:
        kind = "wheel" if pkg.relfn.endswith(".whl") else "sdist" if pkg.relfn.endswith(".tar.gz") else None
        if kind:
            files.setdefault(canonical_version(pkg.version), {})[kind] = pkg
    yanked = yanks.reasons(project) if yanks else {}
    found = []
    for version, kinds in files.items():
        if set(kinds) != {"wheel", "sdist"} or not _valid(version):
            continue
        wheel, sdist = (_file(backend, kinds[kind]) for kind in ("wheel", "sdist"))
        if wheel is None or sdist is None:
            continue  # removed while listing
        package = import_name(wheel.filename)
        wheel_facts = facts.of(kinds["wheel"].fn, wheel.sha256, package) if wheel.sha256 and package else WheelFacts()
        found.append(Release(version, wheel, sdist, wheel_facts, yanked.get(version)))
    return sorted(found, key=lambda release: Version(release.version), reverse=True)


def import_name(wheel_filename: str) -> str | None:
    """The package folder a wheel of this name holds: its distribution part, normalised as wheel
    names are (PEP 427); None when that is no Python identifier (nothing is read as such a package).

    >>> import_name("titanic_survival-1.0.0+x-py3-none-any.whl"), import_name("Titanic.Survival-1-py3-none-any.whl")
    ('titanic_survival', 'titanic_survival')
    >>> import_name("../x-1-py3-none-any.whl"), import_name("a b-1-py3-none-any.whl")
    (None, None)
    """
    name = re.sub(r"[-_.]+", "_", wheel_filename.split("-", 1)[0]).lower()
    return name if _IMPORT_NAME.fullmatch(name) else None


def _valid(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _file(backend: t.Any, pkg: t.Any) -> PackageFile | None:
    digest = pkg.digest or backend.digest(pkg)
    try:
        stat = os.stat(pkg.fn)
    except OSError:
        return None
    sha256 = digest.removeprefix("sha256=") if digest and digest.startswith("sha256=") else None
    return PackageFile(pkg.relfn_unix.rsplit("/", 1)[-1], pkg.relfn_unix, sha256, stat.st_size, stat.st_mtime, pkg.fn)


@dataclass(frozen=True)
class ModelPackage:
    """A project on the index whose newest complete version's wheel holds ``<package>/models/manifest.json``."""

    project: str  # canonical
    releases: list[Release]  # newest first, never empty

    @property
    def newest(self) -> Release:
        """The newest version not yanked; the newest of all when every version is yanked."""
        return next((r for r in self.releases if r.yanked is None), self.releases[0])

    def headline(self) -> tuple[str, float, str] | None:
        """(metric the release gate compares, the best model's value, that model) of ``newest``."""
        release = self.newest
        metric, lower = release.gate
        scored = [(value, model) for model in sorted(release.facts.models)
                  if (value := release.metric(model, metric)) is not None]
        if not scored:
            return None
        value, model = (min if lower else max)(scored, key=lambda pair: pair[0])
        return metric, value, model


def model_packages(backend: t.Any, yanks: YankStore | None, facts: FactsCache, own: str) -> list[ModelPackage]:
    """The model packages on the index, by name; ``own``, the index's own package, whenever it has a
    complete version (its page lists a version whose wheel cannot be read, as unreadable).

    One listing of the index; channel packages (wheels only) and dependency wheels have no
    complete version and are passed over without opening a file."""
    by_project: dict[str, list[t.Any]] = {}
    for pkg in backend.get_all_packages():
        by_project.setdefault(pkg.pkgname_norm, []).append(pkg)
    found = []
    for project, packages in sorted(by_project.items()):
        complete = releases_of(backend, packages, project, yanks, facts)
        if complete and (complete[0].facts.built or project == own):
            found.append(ModelPackage(project, complete))
    return found
