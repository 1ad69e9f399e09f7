"""The documentation as a reader sees it: the README, and the site's pages in the order of
mkdocs.yml's nav with the generated files they include (``--8<-- "..."``) in place."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.helpers import REPO

DOCS = REPO / "docs"
README = (REPO / "README.md").read_text(encoding="utf-8")
INCLUDE = re.compile(r'^--8<-- "([^"]+)"$', re.MULTILINE)
SNIPPET_ROOTS = (DOCS, REPO)  # mkdocs.yml's pymdownx.snippets base_path, in its order


def included(name: str) -> Path:
    return next(root / name for root in SNIPPET_ROOTS if (root / name).is_file())


def expanded(text: str) -> str:
    """``text`` with each include line replaced by the file it names (its last newline dropped, as
    the snippets extension does)."""
    return INCLUDE.sub(lambda m: included(m.group(1)).read_text(encoding="utf-8").removesuffix("\n"), text)


def page(name: str) -> str:
    return expanded((DOCS / name).read_text(encoding="utf-8"))


def nav_pages() -> list[str]:
    """The site's pages, in the order of its navigation (paths under docs/)."""
    def flat(items) -> list[str]:
        found = []
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            found += flat(value) if isinstance(value, list) else [value]
        return found
    return flat(yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["nav"])


def site_text(exclude: tuple[str, ...] = ()) -> str:
    """Every page in reading order (but ``exclude``), one text: the story the pages tell, release after release."""
    return "\n".join(page(name) for name in nav_pages() if name not in exclude)


def section(text: str, heading: str) -> str:
    """The lines under ``heading`` (a whole heading line) up to the next heading of its level or above
    (a ``#`` line inside a fenced block is a shell comment, not a heading)."""
    level = len(heading.split(" ", 1)[0])
    lines, fenced = text.split(f"\n{heading}\n", 1)[1].split("\n"), False
    for number, line in enumerate(lines):
        fenced = fenced != line.startswith("```")
        found = re.match(r"(#+) ", line)
        if not fenced and found and len(found.group(1)) <= level and not line.startswith("```"):
            return "\n".join(lines[:number])
    return "\n".join(lines)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Each fenced block as (language, text)."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
