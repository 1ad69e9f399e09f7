"""The README's commands hold when followed in order in one fresh clone (checked statically:
running it end to end is the integration suite's work, release by release).

Its release lines say which version each publishes; versions rise in reading order (one
record counts every index), a command names only a version published above it, and an
install after a release other than the first copies the printed version (``$V`` from
``make released``) instead of a number that holds only on a fresh index.
"""

from __future__ import annotations

import re

from packaging.version import Version

from tests.helpers import REPO, run

README = (REPO / "README.md").read_text(encoding="utf-8")
VERSION = r"\d+\.\d+\.\d+\+[a-z0-9]+(?:\.[a-z0-9]+)*"
# A pin of a package's version; <name>-data pins follow the data's versions, not the releases'.
PINNING = re.compile(rf"(?:(?<![a-z0-9-])(?![a-z0-9-]*-data==)[a-z][a-z0-9-]*==|\b(?:VERSION|A|B)=)({VERSION})")
RENAME = re.compile(r"^\s*make rename NAME=(\S+)")
DEFAULT_PACKAGE = "mymodel"


def shell_blocks() -> list[list[str]]:
    """The lines of each fenced block without a language (the README's shell commands), in reading order."""
    blocks, current, language = [], [], None
    for line in README.splitlines():
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


def package_lines() -> list[tuple[str, str]]:
    """Every line of a shell block, and every inline command (make, pip), in reading order, each with
    the package it is about: mymodel, or from a ``make rename NAME=...`` on to the end of its block."""
    lines, fenced, package = [], False, DEFAULT_PACKAGE
    for line in README.splitlines():
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


def code_lines() -> list[str]:
    return [line for line, _ in package_lines()]


def make_commands() -> list[str]:
    return [m.group(0) for line in code_lines() for m in re.finditer(r"\bmake (?:-s )?[a-z][^#|)`]*", line)]


def test_every_make_target_and_variable_the_readme_names_exists():
    listed = run(["make", "--no-print-directory", "-C", REPO, "help"]).stdout
    targets = set(re.findall(r"^  make (\S+)", listed, re.MULTILINE))
    makefile = (REPO / "Makefile").read_text()
    commands = make_commands()
    assert len(commands) > 30
    for command in commands:
        words = command.split()[1:]
        target = next(w for w in words if not w.startswith("-"))
        assert target in targets, f"README runs `{command.strip()}`: make help has no {target}"
        for variable in re.findall(r"\b([A-Z][A-Z_]*)=", command):
            assert re.search(rf"\b{variable}\b", makefile), f"README sets {variable}= (`{command.strip()}`): not in the Makefile"


def test_versions_are_those_the_releases_above_them_publish():
    """Per package: a renamed package is a new project, whose first release is its first version."""
    published: dict[str, list[str]] = {}
    for line, package in package_lines():
        command, _, comment = line.partition("#")
        record = published.setdefault(package, [])
        if re.match(r"\s*make release\b", command):
            announced = re.findall(VERSION, comment)
            for version in announced:
                assert not record or Version(version) > Version(record[-1]), \
                    f"`{line.strip()}`: {version} after {record[-1]} (every index counts: numbers only rise)"
            record += announced
            continue
        for version in PINNING.findall(command):
            assert version in record, f"`{line.strip()}` names {version}, which no release of {package} above it publishes"
    assert published[DEFAULT_PACKAGE][0] == "1.1.1+titanic" and len(published[DEFAULT_PACKAGE]) >= 4
    assert published["titanic-survival"] == ["1.1.1+titanic", "1.1.2+titanic"]  # Your own model


def test_an_install_after_a_later_release_copies_the_printed_version():
    """A renamed package counts its own releases: its first two hold in any clone, as mymodel's do."""
    releases: dict[str, int] = {}
    for block in shell_blocks():
        since_release, package = None, DEFAULT_PACKAGE
        for line in block:
            renamed = RENAME.match(line)
            if renamed:
                package, since_release = renamed.group(1), None
            elif re.match(r"make release\b", line):
                releases[package] = releases.get(package, 0) + 1
                since_release = releases[package]
            elif "pip install" in line and since_release is not None and since_release > 2:  # after the README's first
                assert f'"{package}==$V"' in line, f"`{line}` follows a release whose version differs by clone"
                assert any(text.startswith("V=$(make -s released)") for text in block), block
    assert releases[DEFAULT_PACKAGE] >= 6 and releases["titanic-survival"] == 2


def test_your_own_model_is_what_its_integration_test_runs():
    """The section's files and commands are test_own_model's: the test runs them as written."""
    from tests.integration.test_own_model import COMMANDS, FEATURES_PY, MODELS

    section = README.split("\n### Your own model\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert blocks == [("python", FEATURES_PY), ("toml", MODELS), ("", "\n".join(COMMANDS) + "\n")]


def test_the_team_data_training_and_metrics_files_are_what_their_integration_test_releases():
    """Sources, Your own training and Your metrics show the files test_team_data writes and releases."""
    from tests.integration.test_team_data import BOOSTED_TOML, DATA_PY, METRICS_PY, METRICS_TOML, TRAINING_PY

    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)
    for block in (("python", DATA_PY), ("python", TRAINING_PY), ("toml", BOOSTED_TOML), ("python", METRICS_PY),
                  ("toml", METRICS_TOML)):
        assert block in blocks, block[1].splitlines()[0]
