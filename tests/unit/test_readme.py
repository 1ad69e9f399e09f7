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
PINNING = re.compile(rf"(?:mymodel==|\b(?:VERSION|A|B)=)({VERSION})")


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


def code_lines() -> list[str]:
    """Every line of a shell block, and every inline command (make, pip), in reading order."""
    lines, fenced = [], False
    for line in README.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            language = line[3:].strip() if fenced else ""
            continue
        if fenced:
            if not language:
                lines.append(line)
        else:
            lines += [span for span in re.findall(r"`([^`]+)`", line) if span.startswith(("make ", "pip ", "uv "))]
    return lines


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
    published: list[str] = []
    for line in code_lines():
        command, _, comment = line.partition("#")
        if re.match(r"\s*make release\b", command):
            announced = re.findall(VERSION, comment)
            for version in announced:
                assert not published or Version(version) > Version(published[-1]), \
                    f"`{line.strip()}`: {version} after {published[-1]} (every index counts: numbers only rise)"
            published += announced
            continue
        for version in PINNING.findall(command):
            assert version in published, f"`{line.strip()}` names {version}, which no release above it publishes"
    assert published[0] == "1.1.1+titanic" and len(published) >= 4


def test_an_install_after_a_later_release_copies_the_printed_version():
    releases = 0
    for block in shell_blocks():
        since_release = None
        for line in block:
            if re.match(r"make release\b", line):
                releases += 1
                since_release = releases
            elif "pip install" in line and since_release is not None and since_release > 2:  # after the README's first
                assert '"mymodel==$V"' in line, f"`{line}` follows a release whose version differs by clone"
                assert any(text.startswith("V=$(make -s released)") for text in block), block
    assert releases >= 6
