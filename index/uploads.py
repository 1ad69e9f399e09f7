"""What an upload may add, beyond pypiserver's refusal of a file name it already holds.

The index owns the model package's name and every name derived from it
(``mymodel``, ``mymodel-<channel>`` and the data package ``mymodel-data``, PEP 503 normalised;
index/owned_package.py). A version of those has fixed files: the model's one sdist and one wheel
(a release uploads the sdist, then the wheel), a channel's or the data package's one wheel. Any other file for a version that already
has a file of its kind is refused with 409, so ``pip install mymodel==X.Y.Z+tag``
installs what the release uploaded and nothing added later (a wheel with a more
specific tag, or a build tag, would win pip's choice). Other projects keep
pypiserver's rule. A hidden file name is refused for every project: pypiserver
stores it and never lists it.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, canonicalize_name,
                             parse_sdist_filename, parse_wheel_filename)
from packaging.version import InvalidVersion, Version

from index import owned_package

WHEEL, SDIST = "wheel", "sdist"


class UploadRefused(Exception):
    """An upload the index will not store: ``status`` (400 or 409) and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def owned(project: str, package: str | None = None) -> bool:
    """Is ``project`` the model package (``package``, default: this index's) or a name derived
    from it (never fetched from elsewhere)?

    >>> [owned(n) for n in ("mymodel", "MyModel_Staging", "mymodel.prod", "mymodelx", "requests")]
    [True, True, True, False, False]
    """
    name, package = canonicalize_name(project), package or owned_package.name()
    return name == package or name.startswith(f"{package}-")


def kinds(project: str) -> tuple[str, ...]:
    """The files one version of an owned project has: a channel's (former channel packages) and the data
    package's (pipeline/steps/data_package.py) is one wheel.

    >>> kinds("mymodel"), kinds("mymodel-data"), kinds("mymodel-prod")
    (('sdist', 'wheel'), ('wheel',), ('wheel',))
    """
    return (SDIST, WHEEL) if canonicalize_name(project) == owned_package.name() else (WHEEL,)


@dataclass(frozen=True)
class Slot:
    """The place a file takes in an owned project: one per project, version and kind."""

    project: str  # canonical
    version: Version
    kind: str


def slot(filename: str) -> Slot | None:
    """Where ``filename`` goes; None for a file of a project the index does not own.

    Raises UploadRefused (400) for a hidden name, or an owned project's file that is not
    a wheel or sdist of a kind it takes.

    >>> slot("mymodel-1.1.1+Titanic-cp311-none-any.whl") == slot("mymodel-1.01.1+titanic-py3-none-any.whl")
    True
    >>> slot("requests-2.0-py3-none-any.whl") is None
    True
    """
    if filename.startswith("."):
        raise UploadRefused(400, f"{filename} starts with '.': the index never lists such a file; "
                                 "upload it under its package's name")
    # imported here: pypiserver's package imports its config and passlib (~0.2 s), which a release that
    # only asks owned() (pipeline/indexes/devpi.py) never needs
    from pypiserver.pkg_helpers import guess_pkgname_and_version

    listed = guess_pkgname_and_version(filename)  # the project pypiserver will list it under
    if listed is None or not owned(listed[0]):
        return None
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            kind = WHEEL
        else:
            name, version = parse_sdist_filename(filename)
            kind = SDIST
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise UploadRefused(400, f"{filename} is not a wheel or sdist file name ({exc}); "
                                 f"{listed[0]} takes only those") from None
    if canonicalize_name(name) != canonicalize_name(listed[0]):
        raise UploadRefused(400, f"{filename} names {name}, listed as {listed[0]}; rename it")
    if kind not in kinds(name):
        raise UploadRefused(400, f"{filename} is not a wheel: {canonicalize_name(name)} takes "
                                 "only a wheel per version")
    return Slot(canonicalize_name(name), version, kind)


def check_room(new: Slot, held: t.Iterable[str]) -> None:
    """Refuse (409) a file whose slot one of ``held`` (the file names on the index) fills."""
    for existing in held:
        try:
            taken = slot(existing)
        except UploadRefused:
            continue  # placed by hand, not an upload: it fills no slot
        if taken == new:
            raise UploadRefused(409, f"{new.project} {new.version} already has its {new.kind} ({existing}); "
                                     "a published version takes no other file: publish a new version")
