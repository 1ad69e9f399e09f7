"""Are the installed libraries the ones the models were trained with?

The build records every distribution the models' pickles and this package's code import,
each in the range of the version trained with (manifest.json "requires", the wheel's
Requires-Dist); ``load`` and ``python -m <package> validate`` check every one.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import store
from .errors import EnvironmentMismatchError, IntegrityError


@dataclass(frozen=True)
class Check:
    library: str
    trained_with: str
    required: str
    installed: str | None
    ok: bool

    @property
    def problem(self) -> str:
        """One mismatch in words: the library, the version trained with, the range, what is installed, the fix."""
        installed = f"{self.installed} is installed" if self.installed else "it is not installed"
        return (f"these models were trained with {self.library} {self.trained_with} and need "
                f"{self.library}{self.required}, but {installed}: pip install '{self.library}{self.required}', "
                f"or pin a {store.DISTRIBUTION} version trained with your {self.library}")


@functools.cache
def installed_version(library: str) -> str | None:
    """The installed version of the distribution ``library``, as importlib.metadata.version gives it: read
    from the first ``<name>-<version>.dist-info`` for it on sys.path, that folder's METADATA headers only.
    importlib.metadata itself (whose import alone was a tenth of the -onnx package's cold start) answers
    where the layout is not that plain: no such folder, several, an egg or a zip on the way. Read once per
    process."""
    dist_info = _plain_dist_info(library)
    if dist_info is not None:
        version = store.metadata_version(dist_info)
        if version is not None:
            return version
    import importlib.metadata

    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return None


def _plain_dist_info(library: str) -> Path | None:
    """The one dist-info folder importlib.metadata would find first for ``library`` (the same name matching,
    the same sys.path order); None where it might find something else first."""
    wanted = store.normalised_name(library)
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return None  # a zip (or an egg file) on sys.path: importlib.metadata looks inside it
            continue
        if folder.lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(folder)
        except OSError:
            continue
        found = [child for child in children if child.lower().endswith((".dist-info", ".egg-info", ".egg"))
                 and store.normalised_name(child.rpartition(".")[0].partition("-")[0]) == wanted]
        if found:
            return Path(folder, found[0]) if len(found) == 1 and found[0].lower().endswith(".dist-info") else None
    return None


def checks() -> list[Check]:
    """One check per recorded requirement, in the manifest's order."""
    requires = store.manifest().get("requires", {})
    if not isinstance(requires, dict):
        requires = {}
    names = list(store.list_models())
    trained = _trained_with(names)
    result = []
    for library, spec in requires.items():
        installed = installed_version(library)
        ok = installed is not None and _satisfies(library, spec, installed, requires)
        result.append(Check(library, trained.get(library, "-"), str(spec), installed, ok))
    return result


_PLAIN_BOUND = re.compile(r"(>=|<|==)([0-9]+(?:\.[0-9]+)*)")


def _satisfies(library: str, spec: object, installed: str, requires: dict) -> bool:
    """Is ``installed`` in ``spec``? Ranges of plain release numbers (``>=2.4,<3``, what builds write) on a
    plain installed version are compared here; anything else by packaging, imported only then (importing
    it is most of a cold check's cost, which the -onnx package's cold start pays).

    >>> _satisfies("numpy", ">=2.4,<3", "2.4.6", {}), _satisfies("numpy", ">=2.4,<3", "3.0", {})
    (True, False)
    >>> _satisfies("numpy", ">=2.4,<3", "2.5.0rc1", {})  # not plain: packaging decides
    True
    """
    verdict = _plain_verdict(str(spec), installed)
    if verdict is not None:
        return verdict
    return _range(_specifier_set(requires), library, spec).contains(installed, prereleases=True)


def _plain_verdict(spec: str, installed: str) -> bool | None:
    """The verdict for a range of plain bounds on a plain version, compared as PEP 440 does (zero-padded
    release numbers); None when either is not that plain."""
    if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)*", installed):
        return None
    bounds = [_PLAIN_BOUND.fullmatch(clause.strip()) for clause in spec.split(",")]
    if not spec.strip() or not all(bounds):
        return None
    version = [int(part) for part in installed.split(".")]
    for bound in bounds:
        operator, limit = bound.group(1), [int(part) for part in bound.group(2).split(".")]
        width = max(len(version), len(limit))
        have, edge = version + [0] * (width - len(version)), limit + [0] * (width - len(limit))
        if not {">=": have >= edge, "<": have < edge, "==": have == edge}[operator]:
            return False
    return True


def _range(specifier_set, library: str, spec: object):
    from packaging.specifiers import InvalidSpecifier

    try:
        return specifier_set(str(spec))
    except InvalidSpecifier:
        raise IntegrityError(f"{store.PACKAGE_DIR / 'models' / store.MANIFEST_FILE} requires {library} {str(spec)!r}, "
                             f"which is not a version range: the package is damaged; {store.reinstall_hint()}") from None


def _trained_with(names: list[str]) -> dict[str, str]:
    """The versions every model's training_environment recorded (one model may add a library of its own)."""
    trained: dict[str, str] = {}
    for name in names:
        trained.update(store.model_metadata(name).get("training_environment", {}))
    return trained


def _specifier_set(requires: dict):
    """packaging's SpecifierSet; packaging is itself a requirement, so its absence is one more mismatch."""
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        spec = requires.get("packaging", "")
        raise EnvironmentMismatchError(f"this package needs packaging{spec} to check its requirements, but it is "
                                       f"not installed: pip install 'packaging{spec}'") from None
    return SpecifierSet


def require_compatible() -> None:
    """Refuse to load while any recorded requirement is missing or out of its range."""
    bad = [check for check in checks() if not check.ok]
    if bad:
        raise EnvironmentMismatchError("; ".join(check.problem for check in bad)
                                       + " (or pass check_environment=False to load anyway)")
