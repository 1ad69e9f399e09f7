"""The commands of the README and of the documentation's pages hold when followed in order in one
fresh clone (checked statically: running them end to end is the integration suite's work, release
by release). The README tells one story (its quick start); the site's pages, read in the order of
their navigation, tell another.

Release lines say which version each publishes; versions rise in reading order (one record counts
every index), a command names only a version published above it, and an install after a release
other than the first two copies the printed version (``$V`` from ``make released``) instead of a
number that holds only on a fresh index.
"""

from __future__ import annotations

import re

import pytest
from packaging.version import Version

from tests.docs_text import DOCS, README, fenced_blocks, nav_pages, page, section, site_text
from tests.helpers import REPO, run

VERSION = r"\d+\.\d+\.\d+\+[a-z0-9]+(?:\.[a-z0-9]+)*"
# A pin of a package's version; <name>-data pins follow the data's versions, not the releases'.
PINNING = re.compile(rf"(?:(?<![a-z0-9-])(?![a-z0-9-]*-data==)([a-z][a-z0-9-]*)==|\b(?:VERSION|A|B)=)({VERSION})")
RENAME = re.compile(r"^\s*make rename NAME=(\S+)")
DEFAULT_PACKAGE = "mymodel"
README_LIMIT = 200  # lines: a team reads it in five minutes
FIRST_SCREEN = 60  # lines


def shell_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced block without a language (shell commands), in reading order."""
    blocks, current, language = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, current = line[3:].strip(), []
            else:
                if not language:
                    blocks.append(current)
                language = None
        elif language is not None:
            current.append(line)
    return blocks


def package_lines(text: str) -> list[tuple[str, str]]:
    """Every line of a shell block, and every inline command (make, pip), in reading order, each with
    the package it is about: mymodel, or from a ``make rename NAME=...`` on to the end of its block."""
    lines, fenced, package = [], False, DEFAULT_PACKAGE
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            language = line[3:].strip() if fenced else ""
            package = DEFAULT_PACKAGE
            continue
        if fenced:
            if not language:
                renamed = RENAME.match(line)
                package = renamed.group(1) if renamed else package
                lines.append((line, package))
        else:
            lines += [(span, DEFAULT_PACKAGE) for span in re.findall(r"`([^`]+)`", line)
                      if span.startswith(("make ", "pip ", "uv "))]
    return lines


def make_commands(text: str) -> list[str]:
    return [m.group(0) for line, _ in package_lines(text) for m in re.finditer(r"\bmake (?:-s )?[a-z][^#|)`]*", line)]


# The site's story leaves out the pages that table cases rather than tell them in order.
STORIES = {"README.md": README, "the site's pages": site_text(exclude=("reliability.md", "benchmarks.md"))}


@pytest.mark.parametrize("story", ["README.md", "every page"])
def test_every_make_target_and_variable_named_exists(story):
    listed = run(["make", "--no-print-directory", "-C", REPO, "help"]).stdout
    targets = set(re.findall(r"^  make (\S+)", listed, re.MULTILINE))
    makefile = (REPO / "Makefile").read_text()
    commands = make_commands(README if story == "README.md" else site_text())
    assert len(commands) > (5 if story == "README.md" else 30)
    for command in commands:
        words = command.split()[1:]
        target = next(w for w in words if not w.startswith("-"))
        assert target in targets, f"{story} runs `{command.strip()}`: make help has no {target}"
        for variable in re.findall(r"\b([A-Z][A-Z_]*)=", command):
            assert re.search(rf"\b{variable}\b", makefile), f"{story} sets {variable}= (`{command.strip()}`): not in the Makefile"


def published_in_order(text: str) -> dict[str, list[str]]:
    """Per package: the versions its release lines announce; every pin must name one announced above it."""
    published: dict[str, list[str]] = {}
    for line, package in package_lines(text):
        command, _, comment = line.partition("#")
        record = published.setdefault(package, [])
        if re.match(r"\s*make release\b", command):
            announced = re.findall(VERSION, comment)
            for version in announced:
                assert not record or Version(version) > Version(record[-1]), \
                    f"`{line.strip()}`: {version} after {record[-1]} (every index counts: numbers only rise)"
            record += announced
            continue
        for name, version in PINNING.findall(command):
            pinned = name.removesuffix("-onnx") if name else package  # a version's -onnx twin shares its number
            assert version in published.get(pinned, []), \
                f"`{line.strip()}` names {version}, which no release of {pinned} above it publishes"
    return published


def test_versions_are_those_the_releases_above_them_publish():
    """Per package: a renamed package is a new project, whose first release is its first version."""
    site = published_in_order(STORIES["the site's pages"])
    assert site[DEFAULT_PACKAGE][0] == "1.1.1+titanic" and len(site[DEFAULT_PACKAGE]) >= 4
    assert site["titanic-survival"] == ["1.1.1+titanic", "1.1.2+titanic"]  # the worked example of Your own model
    assert published_in_order(README)["titanic-survival"] == ["1.1.1+passengers", "1.1.2+passengers"]


@pytest.mark.parametrize("story", sorted(STORIES))
def test_an_install_after_a_later_release_copies_the_printed_version(story):
    """A renamed package counts its own releases: its first two hold in any clone, as mymodel's do."""
    releases: dict[str, int] = {}
    for block in shell_blocks(STORIES[story]):
        since_release, package = None, DEFAULT_PACKAGE
        for line in block:
            renamed = RENAME.match(line)
            if renamed:
                package, since_release = renamed.group(1), None
            elif re.match(r"make release\b", line):
                releases[package] = releases.get(package, 0) + 1
                since_release = releases[package]
            elif "pip install" in line and since_release is not None and since_release > 2:  # after the first two
                assert f'"{package}==$V"' in line, f"`{line}` follows a release whose version differs by clone"
                assert any(text.startswith("V=$(make -s released)") for text in block), block
    assert releases["titanic-survival"] == 2
    assert story == "README.md" or releases[DEFAULT_PACKAGE] >= 6


def test_the_readme_is_a_front_door():
    """At most README_LIMIT lines; the two commands first; a pinned install of the team's own package on
    its first screen; a link to every page of the site."""
    lines = README.splitlines()
    assert len(lines) <= README_LIMIT, f"README.md has {len(lines)} lines; move detail into docs/"
    assert lines[3].startswith("make release") and lines[4].startswith("make test")
    assert any(re.search(r'pip install .*"titanic-survival==\d+\.\d+\.\d+\+passengers"', line)
               for line in lines[:FIRST_SCREEN])
    linked = set(re.findall(r"\]\(docs/([^)#]+)", README))
    assert set(nav_pages()) - {"index.md", "benchmarks.md"} <= linked, "a page the README does not point at"
    for target in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)", README):
        assert (REPO / target).is_file(), f"README links to {target}, which does not exist"


def test_the_quick_start_is_what_its_integration_test_runs():
    """The README's quick start, its tables and commands, are test_quick_start's: the test runs them as written."""
    from tests.integration.test_quick_start import COMMANDS, TABLES

    blocks = fenced_blocks(section(README, "## Quick start: ship your own model"))
    assert blocks == [("toml", TABLES), ("", "\n".join(COMMANDS) + "\n")]


def test_your_own_model_is_what_its_integration_test_runs():
    """The worked example of docs/own-model.md is test_own_model's: the test runs its files and commands as written."""
    from tests.integration.test_own_model import COMMANDS, FEATURES_PY, MODELS

    blocks = fenced_blocks(section(page("own-model.md"), "## Your own model, worked through"))
    assert blocks == [("python", FEATURES_PY), ("toml", MODELS), ("", "\n".join(COMMANDS) + "\n")]


def test_the_team_data_training_and_metrics_files_are_what_their_integration_test_releases():
    """docs/own-model.md's Sources, Your metrics and Your own training show the files test_team_data writes
    and releases."""
    from tests.integration.test_team_data import BOOSTED_TOML, DATA_PY, METRICS_PY, METRICS_TOML, TRAINING_PY

    text = page("own-model.md")
    for heading, blocks in (("### Sources: Parquet, folders, globs, your loader", [("python", DATA_PY)]),
                            ("### Your metrics", [("python", METRICS_PY), ("toml", METRICS_TOML)]),
                            ("### Your own training: a fit function", [("python", TRAINING_PY), ("toml", BOOSTED_TOML)])):
        assert fenced_blocks(section(text, heading)) == blocks, heading


def test_every_page_is_in_the_navigation():
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "generated" not in p.parts}
    assert pages == set(nav_pages())
