"""Are the installed libraries the ones the models were trained with?"""

from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass

from mymodel import store
from mymodel.errors import EnvironmentMismatchError

# Loading a pickle outside these ranges is refused: the ones that break pickles.
CHECKED = ("scikit-learn", "numpy")


@dataclass(frozen=True)
class Check:
    library: str
    trained_with: str
    required: str
    installed: str | None
    ok: bool


@functools.cache
def installed_version(library: str) -> str | None:
    """Read once per process: importlib.metadata re-reads the metadata files on every call."""
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return None


def checks(libraries: tuple[str, ...] | None = None) -> list[Check]:
    from packaging.specifiers import SpecifierSet

    requires = store.manifest().get("requires", {})
    names = list(store.list_models())
    trained = store.model_metadata(names[0])["training_environment"] if names else {}
    result = []
    for library in libraries or tuple(requires):
        installed = installed_version(library)
        spec = requires.get(library, "")
        ok = installed is not None and SpecifierSet(spec).contains(installed, prereleases=True)
        result.append(Check(library, trained.get(library, "-"), spec, installed, ok))
    return result


def require_compatible() -> None:
    for check in checks(CHECKED):
        if not check.ok:
            raise EnvironmentMismatchError(
                f"these models were trained with {check.library} {check.trained_with} and need "
                f"{check.library}{check.required}, but {check.installed or 'none'} is installed: "
                f"pip install '{check.library}{check.required}', or pin a mymodel version trained with your "
                f"{check.library} (or pass check_environment=False to load anyway)")
