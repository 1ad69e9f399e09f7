"""The model package's name: ``[package] name`` in dataset.toml, checked and normalised.

The name is the distribution's (``pip install titanic-survival``), normalised per PEP 503;
the import name is its form with ``_`` for ``-`` (``import titanic_survival``), which is also
how wheel and sdist file names spell it.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
import unicodedata
from pathlib import Path

from index.settings import REPO
from pipeline.errors import ConfigError

DEFAULT_PACKAGE = "mymodel"
# The package's Summary (pip show, the index's pages) until dataset.toml's [package] description says otherwise.
DEFAULT_DESCRIPTION = "Trained scikit-learn models shipped as a versioned Python package"
DESCRIPTION_LIMIT = 200
# PEP 508's name: ASCII letters and digits at both ends, any of -_. between. Spelled out, never with
# IGNORECASE: that would let "ſ" match "s" and "İ" match "i" (and Python reads the import name ſys as sys).
_NAME = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")
# This repository's own top-level folders: a package by one of these names would shadow them.
REPOSITORY_MODULES = frozenset({"pipeline", "index", "tests", "benchmarks", "build_backend", "conftest", "onnx_runtime"})
# A package's sibling distributions are <name>-<suffix> (its ONNX models, its data; channel packages
# <name>-<channel> before channels became index views); an index that serves <name> owns every
# <name>-... project (index/uploads.py).
SIBLING_SUFFIXES = ("onnx", "data")


class PackageNameError(ConfigError):
    """A name that cannot name the package; the message shows the valid form when there is one."""


def normalised(name: str) -> str:
    """PEP 503: lower case, each run of ``-_.`` one ``-``.

    >>> normalised("Titanic_Survival"), normalised("a.-b")
    ('titanic-survival', 'a-b')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def import_name(name: str) -> str:
    """The package folder and ``import`` name, and how wheel file names spell the distribution.

    >>> import_name("titanic-survival"), import_name("MyModel")
    ('titanic_survival', 'mymodel')
    """
    return normalised(name).replace("-", "_")


def suggestion(name: str) -> str:
    """The closest valid name to ``name``: lower case, other characters turned into ``-``, leading digits last.

    >>> suggestion("Titanic Survival!"), suggestion("2024 model"), suggestion("9lives"), suggestion("??")
    ('titanic-survival', 'model-2024', 'lives-9', 'mymodel')
    >>> suggestion("Café model"), suggestion("İo")
    ('cafe-model', 'io')
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()  # café -> cafe
    words = "-".join(re.findall(r"[a-z0-9]+", folded.lower()))
    moved = ""
    while words[:1].isdigit():
        digits, words = re.match(r"([0-9]+)-?(.*)", words).groups()
        moved += f"-{digits}"
    return words + moved if words else DEFAULT_PACKAGE


def check(name: object, where: str = "[package] name", valid: str = 'name = "{}"') -> str:
    """The normalised name, or a PackageNameError saying why not and what would do
    (``valid``: how the setting is spelled, ``{}`` the name).

    >>> check("Titanic_Survival")
    'titanic-survival'
    >>> check("titanic survival")
    Traceback (most recent call last):
    ...
    pipeline.package.package_name.PackageNameError: [package] name = 'titanic survival' is not a package name (ASCII letters, digits and - _ . between them); use e.g. name = "titanic-survival"
    >>> check("ſys")
    Traceback (most recent call last):
    ...
    pipeline.package.package_name.PackageNameError: [package] name = 'ſys' is not a package name (ASCII letters, digits and - _ . between them); use e.g. name = "sys"
    >>> check("2024-model")
    Traceback (most recent call last):
    ...
    pipeline.package.package_name.PackageNameError: [package] name = '2024-model' gives the import name 2024_model, which Python cannot import; use e.g. name = "model-2024"
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name if isinstance(name, str) else str(name)
        raise PackageNameError(f"{where} = {name!r} is not a package name (ASCII letters, digits and - _ . between them); "
                               f"use e.g. {valid.format(suggestion(shown))}")
    module = import_name(name)
    if not module.isidentifier():
        raise PackageNameError(f"{where} = {name!r} gives the import name {module}, which Python cannot import; "
                               f"use e.g. {valid.format(suggestion(name))}")
    return normalised(name)


def check_unclaimed(name: str) -> None:
    """A new name must not shadow a module Python or this environment already has: the standard
    library's, this repository's, or an installed distribution's (by its name or its import name)."""
    module = unicodedata.normalize("NFKC", import_name(name))  # the name ``import`` looks up
    installed = importlib.metadata.packages_distributions()
    owner = (f"the standard library's {module}" if module in sys.stdlib_module_names
             else f"this repository's {module}/" if module in REPOSITORY_MODULES
             else f"the installed {', '.join(installed[module])}'s {module}" if module in installed
             else f"the installed distribution {name}" if _installed(name) else None)
    if owner is not None:
        raise PackageNameError(f"the name {name} would clash with {owner}; choose another, e.g. NAME={name}-model")


def check_distinct(name: str, current: str) -> None:
    """A new name must not read as another package's sibling: ``titanic-onnx`` is the ONNX distribution
    of ``titanic``, and ``mymodel-...`` belongs to ``mymodel`` (the current or the default package, whose
    index owns every ``<name>-...`` project and would refuse the new one's sdist).

    >>> check_distinct("titanic-survival", "mymodel")
    >>> check_distinct("titanic-onnx", "mymodel")
    Traceback (most recent call last):
    ...
    pipeline.package.package_name.PackageNameError: the name titanic-onnx ends in -onnx, the name of the onnx distribution of the package titanic (<name>-onnx); choose another, e.g. NAME=titanic-model
    >>> check_distinct("mymodel-titanic", "mymodel")
    Traceback (most recent call last):
    ...
    pipeline.package.package_name.PackageNameError: the name mymodel-titanic starts with mymodel-, a name of the package mymodel's own (mymodel-onnx, mymodel-data, ...), which an index serving mymodel owns; choose another, e.g. NAME=titanic
    """
    for suffix in SIBLING_SUFFIXES:
        if name.endswith(f"-{suffix}"):
            base = name.removesuffix(f"-{suffix}")
            raise PackageNameError(f"the name {name} ends in -{suffix}, the name of the {suffix} distribution of the "
                                   f"package {base} (<name>-{suffix}); choose another, e.g. NAME={base}-model")
    for owner in sorted({current, DEFAULT_PACKAGE}):
        if name.startswith(f"{owner}-"):
            rest = name.removeprefix(f"{owner}-")
            other = rest if rest != owner and import_name(rest).isidentifier() else f"model-{rest}"
            raise PackageNameError(f"the name {name} starts with {owner}-, a name of the package {owner}'s own "
                                   f"({owner}-onnx, {owner}-data, ...), which an index serving {owner} owns; "
                                   f"choose another, e.g. NAME={other}")


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def configured(path: Path) -> str:
    """``[package] name`` of dataset.toml at ``path``, normalised; the default when absent
    (or when the file cannot be read: reading the dataset settings reports that)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return DEFAULT_PACKAGE
    package = raw.get("package", {})
    if not isinstance(package, dict):
        raise PackageNameError(f'{path}: [package] must be a table with name = "..."')
    return check(package.get("name", DEFAULT_PACKAGE), f"{path}: [package] name")


def check_description(text: object, where: str = "[package] description") -> str:
    """A package description (its Summary: one line the index and pip show), stripped.

    >>> check_description("  Titanic survival, by the data team ")
    'Titanic survival, by the data team'
    >>> check_description("two\\nlines")
    Traceback (most recent call last):
    ...
    pipeline.package.package_name.PackageNameError: [package] description = 'two\\nlines' must be one line of at most 200 characters (no control characters); e.g. description = "Titanic survival models"
    """
    if isinstance(text, str) and 0 < len(text.strip()) <= DESCRIPTION_LIMIT and text.isprintable():
        return text.strip()
    raise PackageNameError(f"{where} = {text!r} must be one line of at most {DESCRIPTION_LIMIT} characters (no "
                           'control characters); e.g. description = "Titanic survival models"')


def configured_description(path: Path) -> str:
    """``[package] description`` of dataset.toml at ``path``, checked; the template's when absent."""
    try:
        parsed = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return DEFAULT_DESCRIPTION
    return description_of(parsed, f"{path}: [package] description")


def description_of(parsed: dict, where: str = "dataset.toml: [package] description") -> str:
    """The description a parsed dataset.toml gives, checked; the template's when it names none."""
    package = parsed.get("package")
    if not isinstance(package, dict) or "description" not in package:
        return DEFAULT_DESCRIPTION
    return check_description(package["description"], where)


DATASET_CONFIG = REPO / "dataset.toml"
# The model package: the distribution's name (normalised) and its import name, which names its folder
# src/<IMPORT_NAME>/. An invalid name is reported by python -m pipeline before any command runs
# (PACKAGE_PROBLEM), the default standing in till then: a module import cannot print a clean error.
try:
    PACKAGE, PACKAGE_PROBLEM = configured(DATASET_CONFIG), None
except PackageNameError as exc:
    PACKAGE, PACKAGE_PROBLEM = DEFAULT_PACKAGE, exc
IMPORT_NAME = import_name(PACKAGE)


def check_configured() -> None:
    """The configured name is valid, its folder src/<import name>/ is there and pyproject.toml (what
    setuptools builds) gives the same name; else a PackageNameError saying how to fix it."""
    if PACKAGE_PROBLEM is not None:
        raise PACKAGE_PROBLEM
    if not (REPO / "src" / IMPORT_NAME / "__init__.py").is_file():
        raise PackageNameError(f"dataset.toml names the package {PACKAGE}, but its folder src/{IMPORT_NAME}/ is not "
                               "there; set [package] name back and rename with make rename NAME=..., "
                               "which moves the folder too")
    try:
        built = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        built = None
    if not isinstance(built, str) or normalised(built) != PACKAGE:
        raise PackageNameError(f"pyproject.toml names the package {built!r}, dataset.toml [package] name {PACKAGE!r}; "
                               "restore both from git and rename with make rename NAME=..., which changes both")
