"""The documentation's generated parts, written from the code so they cannot drift from it.

``make docs`` writes them into docs/generated/ before MkDocs builds the site (docs/hooks.py),
and the pages include them (``--8<-- "generated/..."``): every Make target and variable (from
the Makefile's ``## `` and ``#= `` lines, which ``make help`` prints too), every dataset.toml key
(pipeline/dataset_keys.py, which the config reader validates with), the package's command line
(its argparse parser) and each client's recipe as ``make consumer`` prints it. A unit test
(tests/unit/test_docs.py) fails when a committed file differs from what the code gives.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline import dataset_keys
from pipeline.config import DEFAULTS_BY_TASK, IMPORT_NAME, INDEX_HOST, INDEX_PORT, PACKAGE, REPO
from pipeline.views import consumers

GENERATED = "generated"  # under docs/: files the pages include, never pages themselves
# The versions the Consume page's recipes show: those the documentation's story has released by then.
CONSUMER_VERSION, CONSUMER_ROLLBACK, CONSUMER_CHANNEL = "2.0.0+titanic.v2", "1.1.1+titanic", "prod"
SIMPLE_URL = f"http://{INDEX_HOST}:{INDEX_PORT}/simple/"
HELP_WIDTH = 100  # the command line's help, as a terminal this wide shows it
_TARGET = re.compile(r"^([a-z][a-z-]*):.*## (.*)$", re.MULTILINE)  # what make help's awk reads
_VARIABLE = re.compile(r"^#= ([A-Z][A-Z_]*)=(\S*)\s+(.*)$", re.MULTILINE)
_NAMED = re.compile(r"\b([A-Z][A-Z_]*)=")


@dataclass(frozen=True)
class MakeVariable:
    name: str
    default: str  # "" when unset
    description: str


def make_targets(makefile: str) -> list[tuple[str, str]]:
    """Each target with its ``## `` help, in the Makefile's order.

    >>> make_targets("venv: $(READY) ## create .venv\\nhelp:\\n")
    [('venv', 'create .venv')]
    """
    return _TARGET.findall(makefile)


def make_variables(makefile: str) -> list[MakeVariable]:
    """Each ``#= NAME=<default>  what it does`` line.

    >>> make_variables("#= INDEX_PORT=8080   the port\\n#= BUMP=   a bump\\n")
    [MakeVariable(name='INDEX_PORT', default='8080', description='the port'), MakeVariable(name='BUMP', default='', description='a bump')]
    """
    return [MakeVariable(*match) for match in _VARIABLE.findall(makefile)]


def _cell(text: str) -> str:
    """Plain text for a Markdown table cell: a ``|`` would end the cell, a ``<package>`` would be an HTML tag.

    >>> _cell("CLIENT=pip|uv for src/<package>/")
    'CLIENT=pip\\\\|uv for src/&lt;package&gt;/'
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def make_reference(makefile: str) -> str:
    targets, variables = make_targets(makefile), make_variables(makefile)
    declared = {variable.name for variable in variables}
    lines = ["| target | what it does | variables it names |", "|---|---|---|"]
    named_by: dict[str, list[str]] = {}
    for target, text in targets:
        named = [name for name in dict.fromkeys(_NAMED.findall(text)) if name in declared]
        for name in named:
            named_by.setdefault(name, []).append(target)
        lines.append(f"| `make {target}` | {_cell(text)} | {' '.join(f'`{name}`' for name in named) or '-'} |")
    lines += ["", "| variable | default | what it does | targets whose help names it |", "|---|---|---|---|"]
    for variable in variables:
        default = f"`{variable.default}`" if variable.default else "unset"
        targets_text = " ".join(f"`{target}`" for target in named_by.get(variable.name, ())) or "-"
        lines.append(f"| `{variable.name}` | {default} | {_cell(variable.description)} | {targets_text} |")
    return "\n".join(lines) + "\n"


def _default_text(key: dataset_keys.Key) -> str:
    if key.required:
        return "none: required"
    if key.default is dataset_keys.UNSET:
        return key.default_text
    value = key.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return "`[]`" if not value else f"`{list(value)}`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


def dataset_reference() -> str:
    out: list[str] = []
    for table in dataset_keys.TABLES:
        out.append(f"## `[{table}]`\n")
        for key in (k for k in dataset_keys.KEYS if k.table == table):
            out += [f"### `{key.name}`\n", f"{key.description}\n", f"- type: {key.type}",
                    f"- default: {_default_text(key)}"]
            if key.allowed:
                out.append(f"- allowed: {key.allowed}")
            out += ["", "```toml", f"[{table}]", key.example, "```", ""]
        if table == dataset_keys.MODELS:
            out.append("Without any `[models.<Name>]` table a release ships the task's default models:\n")
            for task, specs in DEFAULTS_BY_TASK.items():
                described = ", ".join(f"`{spec.name}`" for spec in specs)
                out.append(f"- {task}: {described}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def cli_reference() -> str:
    """``python -m <import name> --help`` and each command's, as the installed package prints them."""
    parser = _package_parser()
    out = [f"`python -m {IMPORT_NAME}` (the console script `{PACKAGE}` is the same):", "", "```text",
           _help(parser).rstrip(), "```", ""]
    for name, sub in _subcommands(parser).items():
        out += [f"## `{name}`", "", "```text", _help(sub).rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def _package_parser() -> argparse.ArgumentParser:
    source = str(REPO / "src")
    if source not in sys.path:
        sys.path.insert(0, source)
    return importlib.import_module(f"{IMPORT_NAME}.__main__").parser()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=HELP_WIDTH)
    return parser.format_help()


def python_api() -> str:
    """mkdocstrings' directives for the package's API, by its import name (which make rename changes)."""
    return (f"::: {IMPORT_NAME}\n    options:\n      members: [list_models, metadata, load, predict]\n\n"
            f"## Errors\n\n::: {IMPORT_NAME}.errors\n    options:\n      show_bases: true\n")


def consumer_recipe(client: str, channel: bool = False) -> str:
    """What ``make consumer CLIENT=<client>`` prints for the Consume page's versions (or its channel)."""
    where = (consumers.target(PACKAGE, SIMPLE_URL, None, None, CONSUMER_CHANNEL) if channel
             else consumers.target(PACKAGE, SIMPLE_URL, CONSUMER_VERSION, CONSUMER_ROLLBACK))
    return consumers.recipe(client, where).render()


def consumer_file(client: str, channel: bool = False) -> str:
    return f"{GENERATED}/consumer/{client}{'-channel' if channel else ''}.txt"


def generated(repo: Path = REPO) -> dict[str, str]:
    """Every generated file: its path under docs/ -> its text."""
    makefile = (repo / "Makefile").read_text(encoding="utf-8")
    files = {f"{GENERATED}/make.md": make_reference(makefile),
             f"{GENERATED}/dataset-toml.md": dataset_reference(),
             f"{GENERATED}/cli.md": cli_reference(),
             f"{GENERATED}/python-api.md": python_api()}
    for client in consumers.CLIENTS:
        for channel in (False, True):
            files[consumer_file(client, channel)] = consumer_recipe(client, channel)
    return files


def write(docs: Path, repo: Path = REPO) -> list[str]:
    """Write the generated files that differ (a file rewritten with the same text would make
    ``make docs-serve`` rebuild forever); returns those written. Files no longer generated are removed."""
    wanted = generated(repo)
    written = []
    for name, text in wanted.items():
        path = docs / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(name)
    for stale in (docs / GENERATED).rglob("*"):
        if stale.is_file() and stale.relative_to(docs).as_posix() not in wanted:
            stale.unlink()
            written.append(stale.relative_to(docs).as_posix())
    return written
