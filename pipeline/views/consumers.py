"""``make consumer CLIENT=...``: what a consumer pastes to install the model package with their
client, from this index only, pinned with its data label, and the commands that install, lock
and roll back. The integration tests run these very commands (tests/integration/test_consumers.py)
and the documentation's Consume page shows them as make docs writes them (pipeline/views/reference.py),
checked by a unit test against make consumer's output, so the three cannot drift.

Why each recipe keeps the model package on our index alone (dependency confusion): a client
that merges indexes (pip's ``--extra-index-url``) or prefers an extra one (uv) installs a
public ``mymodel 9.9.9`` over ours. The pin ``==X.Y.Z+label`` cannot be met by a public index
(PyPI refuses local labels), and each client's explicit-index setting never asks another
index for the package at all.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from pipeline.errors import ConfigError

CLIENTS = ("pip", "uv", "uv-project", "poetry", "pdm", "pip-tools", "pipx")
SOURCE = "models"  # the name the project files give our index
PASSWORD = "PASSWORD"  # printed in place of the read-only password, which is never printed


@dataclass(frozen=True)
class Step:
    name: str  # install | lock | install-locked | rollback | ...: what the tests look up
    comment: str
    commands: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    client: str
    summary: str
    paste: tuple[tuple[str, str], ...]  # (where it goes, the text)
    steps: tuple[Step, ...]
    first: tuple[Step, ...] = ()  # before the pasted files (a project file to create)

    def step(self, name: str) -> Step:
        return next(step for step in (*self.first, *self.steps) if step.name == name)

    def render(self) -> str:
        lines = [f"# {self.summary}"]
        for step in self.first:
            lines += ["", f"# {step.comment}", *step.commands]
        for where, text in self.paste:
            lines += ["", f"# {where}:", *text.rstrip("\n").splitlines()]
        for step in self.steps:
            lines += ["", f"# {step.comment}", *step.commands]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Target:
    """What the recipe points at: the index (a channel's view or the whole index), the
    requirement, and the requirement a rollback writes."""

    package: str
    simple_url: str  # without credentials
    requirement: str  # mymodel==X.Y.Z+label, or the bare name on a channel
    rollback: str | None  # None on a channel: a rollback is a promotion
    private: bool = False  # reads need the read-only credential (INDEX_AUTH=read)
    reader: str = ""
    reader_file: str = ""


def check_client(client: str | None) -> str:
    if client not in CLIENTS:
        raise ConfigError(f"make consumer needs CLIENT=<one of {', '.join(CLIENTS)}>"
                          + (f", not {client!r}" if client else "") + "; e.g. make consumer CLIENT=uv")
    return client


def target(package: str, simple_url: str, version: str | None, rollback: str | None, channel: str | None = None,
           private: bool = False, reader: str = "", reader_file: str = "", channel_url: str | None = None) -> Target:
    """``channel_url``: the index client's URL of the channel (devpi's differs); the embedded index's form by default."""
    if channel:
        base = simple_url.rstrip("/").removesuffix("/simple")
        url = channel_url or f"{base}/channels/{channel}/simple/"
        return Target(package, url, package, None, private, reader, reader_file)
    if not version:
        raise ConfigError(f"make consumer needs VERSION=X.Y.Z+tag (this clone has released nothing yet); "
                          f"e.g. make consumer CLIENT=pip VERSION=1.1.2+titanic")
    earlier = f"{package}=={rollback}" if rollback else f"{package}==<earlier X.Y.Z+tag>"
    return Target(package, simple_url, f"{package}=={version}", earlier, private, reader, reader_file)


def recipe(client: str, where: Target) -> Recipe:
    return _RECIPES[check_client(client)](where)


def _q(text: str) -> str:
    """A shell word: a URL holding ``&``, ``'`` or a space pastes as one argument."""
    return shlex.quote(text)


def _toml(text: str) -> str:
    r"""A TOML basic string: quotes, backslashes and control characters escaped.

    >>> print(_toml('http://h/simple/?a=1&b="x"\\'))
    "http://h/simple/?a=1&b=\"x\"\\"
    """
    return '"' + re.sub(r'["\\\x00-\x1f\x7f]', lambda m: {'"': '\\"', "\\": "\\\\"}.get(m[0], f"\\u{ord(m[0]):04x}"),
                        text) + '"'


def _last(where: Target, rollback, follow: tuple[str, ...]) -> Step:
    """A rollback by pin (``rollback(earlier requirement)`` gives its commands), or, on a channel,
    following what was promoted (there a rollback is a promotion)."""
    if where.rollback is None:
        return Step("follow", "follow the channel (a promotion or a rollback promotion)", follow)
    return Step("rollback", "roll back: pin the earlier version", tuple(rollback(where.rollback)))


def _install_comment(where: Target) -> str:
    return "install the exact pin, label included" if where.rollback else "install the version the channel serves"


def _locked(add: str, lock: str, sync: str, tool: str) -> tuple[Step, ...]:
    """The project clients' add (which locks and installs), re-lock and install-the-lock steps."""
    return (Step("install", f"add the requirement as written (no range of {tool}'s own; the lock records every "
                            "file's sha256) and install", (add,)),
            Step("lock", "re-lock after editing pyproject.toml", (lock,)),
            Step("install-locked", "install exactly the lock", (sync,)))


def _credential_note(where: Target) -> tuple[tuple[str, str], ...]:
    """Private reads for the command-line clients: the credential in ~/.netrc, never in a URL
    (pip-compile and uv pip compile write a URL's credential into the lock, shells into their history)."""
    if not where.private:
        return ()
    host = where.simple_url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    return ((f"~/.netrc (private reads; chmod 600; PASSWORD from {where.reader_file})",
             f"machine {host} login {where.reader} password {PASSWORD}"),)


def _pip(where: Target) -> Recipe:
    url, req, pkg = _q(where.simple_url), where.requirement, where.package
    install = f"python -m pip install --index-url {url} "
    return Recipe(
        "pip", f"{pkg} with pip: --index-url, never --extra-index-url (pip merges indexes, highest version wins)",
        _credential_note(where),
        (Step("list", "what the index publishes", (f"python -m pip index versions --index-url {url} {pkg}",)),
         Step("install", _install_comment(where), (install + _q(req),)),
         Step("lock", "lock: every file's sha256 (pylock.toml), then install exactly that",
              (f"python -m pip lock --index-url {url} {_q(req)} -o pylock.toml",)),
         Step("install-locked", "install from the lock", (f"{install}-r pylock.toml",)),
         # --force-reinstall --no-deps takes the channel's version even when it is older (a rollback); the
         # plain install after it adds the dependencies that version requires and the installed one did not.
         _last(where, lambda earlier: [install + _q(earlier)],
               (f"python -m pip install --force-reinstall --no-deps --index-url {url} {pkg}", install + pkg)),
         Step("download", "or fetch the wheel only",
              (f"python -m pip download --no-deps --index-url {url} {_q(req)} -d wheels",))))


def _uv(where: Target) -> Recipe:
    url, req, pkg = _q(where.simple_url), where.requirement, where.package
    install = f"uv pip install --index-url {url} "
    return Recipe(
        "uv", f"{pkg} with uv pip: --index-url only (uv prefers an --extra-index-url to it)",
        _credential_note(where) + (("requirements.in", f"{req}\n"),),
        (Step("install", _install_comment(where), (install + _q(req),)),
         Step("lock", "lock with hashes; --emit-index-url, or uv pip sync cannot find the package",
              (f"uv pip compile --generate-hashes --emit-index-url --index-url {url} requirements.in -o requirements.txt",)),
         Step("install-locked", "install exactly the lock", ("uv pip sync --require-hashes requirements.txt",)),
         _last(where, lambda earlier: [install + _q(earlier)],
               (f"uv pip install --reinstall-package {pkg} --index-url {url} {pkg}",))))


def _uv_project(where: Target) -> Recipe:
    req, pkg, name = where.requirement, where.package, SOURCE.upper()
    config = (f'[[tool.uv.index]]\nname = "{SOURCE}"\nurl = {_toml(where.simple_url)}\nexplicit = true\n\n'
              f'[tool.uv.sources]\n{pkg} = {{ index = "{SOURCE}" }}\n')
    private = ((f"your environment (private reads; PASSWORD from {where.reader_file})",
                f"export UV_INDEX_{name}_USERNAME={where.reader} UV_INDEX_{name}_PASSWORD={PASSWORD}"),)
    return Recipe(
        "uv-project",
        f"{pkg} in a uv project: an explicit index, used for {pkg} alone; write the pin yourself "
        f"(uv add {pkg} writes {pkg}>=X.Y.Z, which drops the label)",
        (("pyproject.toml", config),) + (private if where.private else ()),
        (*_locked(f"uv add --raw {_q(req)}", "uv lock", "uv sync --locked", "uv"),
         _last(where, lambda earlier: [f"uv add --raw {_q(earlier)}"],
               (f"uv lock --upgrade-package {pkg}", "uv sync --locked"))),
        (Step("init", "no pyproject.toml yet? create one first (uv itself: python -m pip install uv)",
              ("uv init --bare",)),))


def _poetry(where: Target) -> Recipe:
    pkg = where.package
    name = SOURCE.upper()
    private = ((f"your environment (private reads; PASSWORD from {where.reader_file})",
                f"export POETRY_HTTP_BASIC_{name}_USERNAME={where.reader} POETRY_HTTP_BASIC_{name}_PASSWORD={PASSWORD}"),)

    def add(requirement: str) -> str:
        # On a channel ">=0" (any version): poetry reads "mymodel@*" as the path "*".
        return f"poetry add {_q(pkg + ('@' + requirement.removeprefix(pkg) if requirement != pkg else '>=0'))} --source {SOURCE}"

    return Recipe(
        "poetry",
        f"{pkg} with Poetry: an explicit source, used for {pkg} alone; write the pin yourself "
        f"(poetry add {pkg} writes ^X.Y.Z, which drops the label)",
        private if where.private else (),
        (Step("configure", "our index as an explicit source",
              (f"poetry source add --priority=explicit {SOURCE} {_q(where.simple_url)}",)),
         *_locked(add(where.requirement), "poetry lock", "poetry sync", "Poetry"),
         _last(where, lambda earlier: [add(earlier)], (f"poetry update {pkg}",))))


def _pdm(where: Target) -> Recipe:
    req, pkg, url = where.requirement, where.package, where.simple_url
    if where.private:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://{where.reader}:${{MYMODEL_READER_PASSWORD}}@{rest}"
    config = f'[[tool.pdm.source]]\nname = "{SOURCE}"\nurl = {_toml(url)}\ninclude_packages = ["{pkg}", "{pkg}-*"]\n'
    private = ((f"your environment (private reads; PASSWORD from {where.reader_file})",
                f"export MYMODEL_READER_PASSWORD={PASSWORD}"),)
    return Recipe(
        "pdm", f"{pkg} with pdm: a source that alone serves {pkg} (include_packages)",
        (("pyproject.toml", config),) + (private if where.private else ()),
        (*_locked(f"pdm add --save-wildcard {_q(req)}", "pdm lock", "pdm sync", "pdm"),
         _last(where, lambda earlier: [f"pdm add --save-wildcard {_q(earlier)}"], (f"pdm update {pkg}",))))


def _pip_tools(where: Target) -> Recipe:
    url, req, pkg = _q(where.simple_url), where.requirement, where.package
    # --no-emit-index-url: the lock names no index (a URL written there could carry a credential).
    compile_ = f"pip-compile --generate-hashes --no-emit-index-url --index-url {url} requirements.in -o requirements.txt"
    sync = f"python -m pip install --require-hashes --index-url {url} -r requirements.txt"
    return Recipe(
        "pip-tools", f"{pkg} with pip-tools: --index-url only; the lock holds every file's sha256 (not the URL)",
        _credential_note(where) + (("requirements.in", f"{req}\n"),),
        (Step("lock", "lock with hashes", (compile_,)),
         Step("install-locked", "install exactly the lock (pip checks every hash)", (sync,)),
         _last(where, lambda earlier: [f"echo {_q(earlier)} > requirements.in", compile_, sync],
               (compile_.replace("pip-compile ", f"pip-compile --upgrade-package {pkg} "), sync))))


def _pipx(where: Target) -> Recipe:
    url, req, pkg = _q(where.simple_url), where.requirement, where.package
    return Recipe(
        "pipx", f"the {pkg} command in its own venv with pipx: --index-url only (pipx keeps no lock)",
        _credential_note(where),
        (Step("install", _install_comment(where), (f"pipx install --index-url {url} {_q(req)}",)),
         Step("run", "use it", (f"{pkg} info",)),
         _last(where, lambda earlier: [f"pipx install --force --index-url {url} {_q(earlier)}"],
               (f"pipx install --force --index-url {url} {pkg}",))))


_RECIPES = {"pip": _pip, "uv": _uv, "uv-project": _uv_project, "poetry": _poetry, "pdm": _pdm,
            "pip-tools": _pip_tools, "pipx": _pipx}

