"""A version's evaluation figures on the registry pages: which its wheel lists, where they are served, their bytes.

A wheel is hostile input and an SVG can carry script. The pages show figures with
``<img>`` only (an image runs no script and loads nothing else), and a figure's own URL
answers with ``Content-Type: image/svg+xml``, ``X-Content-Type-Options: nosniff`` and
``Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; sandbox``:
opened on its own, a figure still runs nothing, in the index's origin or any. Only the
figures a wheel's manifest lists under the names a build gives them
(``<model>/figures/<kind>.svg``, pipeline/steps/figures.py) are read, each with a bound.
A figure is served at ``/registry/<project>/<version>/<model>/figures/<kind>.svg``: the
path the model card's links name relative to models/ (the card ships as
models/MODEL_CARD.md), relative to the version's page, so the card's images show there too.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from index.archive import TooLarge, open_zip, read_member
from index.registry.releases import Release, import_name
from index import owned_package

contract = owned_package.module("contract")
ARCHIVE_ERRORS = owned_package.module("published").ARCHIVE_ERRORS  # what a damaged or hostile zip can raise
FIGURE_TITLES = contract.FIGURE_TITLES
ORDER = {kind: i for i, kind in enumerate(FIGURE_TITLES)}

MODEL = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")  # a model's folder (pipeline/steps/model_specs.py NAME_PATTERN)
KIND = re.compile(r"[a-z][a-z_]{0,39}")
FIGURE_LIMIT = 2 * 2**20  # bytes of one figure the index reads (a build's are ~20 KB)
FIGURE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def listed(release: Release) -> dict[str, list[str]]:
    """{model: [kind, ...]} of the figures the wheel's manifest lists, in the order a build draws them;
    entries with any other name or path are left out."""
    found = release.facts.manifest.get("figures")
    if not isinstance(found, dict):
        return {}
    shown = {}
    for model, files in sorted(found.items()):
        if not (MODEL.fullmatch(model) and model in release.facts.models and isinstance(files, dict)):
            continue
        kinds = [kind for kind, path in files.items()
                 if KIND.fullmatch(kind) and path == f"{model}/figures/{kind}.svg"]
        if kinds:
            shown[model] = sorted(kinds, key=lambda kind: (ORDER.get(kind, len(ORDER)), kind))
    return shown


def href(model: str, kind: str) -> str:
    """A figure's URL relative to its version's page."""
    return f"{quote(model, safe='')}/figures/{quote(kind, safe='')}.svg"


def title(kind: str) -> str:
    return FIGURE_TITLES.get(kind, kind.replace("_", " "))


def read(release: Release, model: str, filename: str) -> bytes | None:
    """The bytes of a figure ``release`` lists (``filename``: ``<kind>.svg``); None for any other name,
    or when the wheel cannot give it within FIGURE_LIMIT."""
    kind = filename.removesuffix(".svg")
    package = import_name(release.wheel.filename)
    if not filename.endswith(".svg") or kind not in listed(release).get(model, []) or package is None:
        return None
    try:
        with open_zip(release.wheel.fn) as archive:
            return read_member(archive, f"{package}/models/{model}/figures/{filename}", FIGURE_LIMIT)
    except (TooLarge, OSError, *ARCHIVE_ERRORS):
        return None
