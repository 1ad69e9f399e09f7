"""Semantic versions plus a data tag, as PEP 440 versions with a local label.

python-semver does the arithmetic; packaging says what PEP 440 accepts and how
it orders. ``1.1.1`` with data ``titanic`` is published as ``1.1.1+titanic``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import semver
from packaging.version import InvalidVersion, Version

from pipeline.errors import VersionError
from pipeline.package.package_name import PACKAGE

# Mercari's data-model-versioning names for the three parts.
BUMPS = {
    "major": "major", "release": "major",
    "minor": "minor", "interface": "minor",
    "patch": "patch", "logic": "patch",
}
# The recorded version of a repo that has never released: the first patch bump gives 1.1.1.
INITIAL_VERSION = "1.1.0"


def canonical_tag(tag: str) -> str:
    """The tag itself if it is a canonical PEP 440 local label, else a VersionError.

    >>> canonical_tag("titanic")
    'titanic'
    >>> canonical_tag("titanic.v2")
    'titanic.v2'
    >>> canonical_tag("Titanic_v2")
    Traceback (most recent call last):
    ...
    pipeline.errors.VersionError: data tag 'Titanic_v2' is not in canonical PEP 440 form; use DATA=titanic.v2
    """
    if not tag:
        raise VersionError("the data tag is empty; set DATA=<tag> (e.g. DATA=titanic) or [dataset] tag in dataset.toml")
    try:
        canonical = Version(f"0+{tag}").local
    except InvalidVersion:
        raise VersionError(
            f"data tag {tag!r} cannot be a PEP 440 local label: use only letters, digits and dots "
            "(e.g. DATA=titanic.v2)") from None
    if canonical != tag:
        raise VersionError(f"data tag {tag!r} is not in canonical PEP 440 form; use DATA={canonical}")
    return tag


def bump_part(bump: str) -> str:
    """The semver part for a BUMP value, Mercari's names included.

    >>> bump_part("logic"), bump_part("interface"), bump_part("release")
    ('patch', 'minor', 'major')
    """
    try:
        return BUMPS[bump]
    except KeyError:
        raise VersionError(f"BUMP={bump!r} is not a bump; use one of {', '.join(BUMPS)}") from None


def parse(version: str) -> Version:
    """A PEP 440 version with a plain X.Y.Z release part.

    >>> parse("1.1.1+titanic").local
    'titanic'
    """
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise VersionError(f"{version!r} is not a PEP 440 version; write it as X.Y.Z+tag, e.g. 1.1.1+titanic") from None
    if len(parsed.release) != 3 or parsed.pre or parsed.post or parsed.dev or parsed.epoch:
        raise VersionError(f"{version!r} is not of the form X.Y.Z+tag; write it as e.g. 1.1.1+titanic")
    return parsed


def to_pep440(base: semver.Version, tag: str) -> str:
    """SemVer core + data tag -> the published version string.

    >>> to_pep440(semver.Version(1, 1, 1), "titanic")
    '1.1.1+titanic'
    """
    return f"{base.major}.{base.minor}.{base.patch}+{canonical_tag(tag)}"


def to_semver(version: str) -> semver.Version:
    """The SemVer core of a published version (the data tag dropped).

    >>> str(to_semver("1.2.3+titanic.v2"))
    '1.2.3'
    """
    return semver.Version(*parse(version).release)


def highest(versions: Iterable[str]) -> str | None:
    """The highest version by PEP 440 order (which is SemVer order on X.Y.Z).

    >>> highest(["1.1.2+titanic", "1.10.0+titanic", "1.9.9+iris"])
    '1.10.0+titanic'
    """
    parsed = [parse(v) for v in versions]
    return str(max(parsed)) if parsed else None


def next_version(published: Iterable[str], recorded: str | None, bump: str, tag: str) -> str:
    """Bump the highest of the published and recorded versions, then attach the tag.

    >>> next_version([], None, "patch", "titanic")
    '1.1.1+titanic'
    >>> next_version(["1.1.1+titanic"], "1.1.0", "logic", "titanic")
    '1.1.2+titanic'
    >>> next_version(["1.1.2+titanic"], "1.3.0+iris", "minor", "titanic")
    '1.4.0+titanic'
    """
    part = bump_part(bump)
    canonical_tag(tag)
    base = highest([*published, recorded or INITIAL_VERSION])
    bumped = getattr(to_semver(base), f"bump_{part}")()
    return to_pep440(bumped, tag)


def check_publishable(version: str, published: Iterable[str]) -> None:
    """Refuse a version that exists, that ``==X.Y.Z`` would confuse, or that goes backwards.

    >>> check_publishable("1.1.2+titanic", ["1.1.1+titanic"])
    >>> check_publishable("1.1.1+iris", ["1.1.1+titanic"])
    Traceback (most recent call last):
    ...
    pipeline.errors.VersionError: 1.1.1+titanic is already published: with 1.1.1+iris too, pip install mymodel==1.1.1 would pick one silently; release 1.1.2+iris instead
    """
    new = parse(version)
    existing = [parse(v) for v in published]
    if new in existing:
        raise VersionError(f"{version} is already on the index; published files are never replaced: "
                           f"release {_next_patch(existing, new.local)} instead (make release)")
    same_release = [v for v in existing if v.release == new.release]
    if same_release:
        raise VersionError(
            f"{same_release[0]} is already published: with {version} too, pip install {PACKAGE}=="
            f"{new.base_version} would pick one silently; release {_next_patch(existing, new.local)} instead")
    top = max(existing, default=None)
    if top is not None and new < top:
        raise VersionError(f"{version} is lower than {top}, the highest published version; "
                           f"release {_next_patch(existing, new.local)} instead (make release picks the next version itself)")


def _next_patch(existing: list[Version], tag: str | None) -> str:
    top = max(existing)
    return to_pep440(semver.Version(*top.release).bump_patch(), tag or "data")


_VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


def read_recorded(text: str) -> str | None:
    """The version in a version.py text.

    >>> read_recorded('__version__ = "1.1.2+titanic"\\n')
    '1.1.2+titanic'
    """
    match = _VERSION_LINE.search(text)
    return match.group(1) if match else None


def version_file_text(version: str) -> str:
    return ("# The last version released from this repository; `make release` rewrites it.\n"
            f'__version__ = "{version}"\n')
