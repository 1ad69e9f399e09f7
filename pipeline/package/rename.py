"""``make rename NAME=...``: give the model package another name, in this clone.

Everything a rename changes: dataset.toml's ``[package] name`` (the one setting the pipeline
reads the name from), the package folder ``src/<import name>/`` (``git mv`` in a git
repository), pyproject.toml's and MANIFEST.in's lines that setuptools needs spelled out,
requirements.lock's ``# via <name> (pyproject.toml:<group>)`` comments (as ``make
requirements`` would write them), and the release record (version.py): the renamed package
is a new project on the index and starts at its first version. The old name's ``releases/``
files stay, as history.

Every new text is made and read back (TOML parsed, the name found again) before anything is
written, then written to a temporary file beside its target and moved into place: a refusal
changes nothing, and no file is ever left half-written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.package.package_name import (check, check_description, check_distinct, check_unclaimed,
                                           description_of, import_name)
from pipeline.steps.provenance import git_output
from pipeline.steps.versioning import INITIAL_VERSION, version_file_text

LOCK_FILE = "requirements.lock"  # make requirements' output: its # via comments name the project


def _project_lines(old_module: str, new: str) -> list[tuple[str, str]]:
    """pyproject.toml's name-dependent lines, as (pattern, replacement) pairs; each must match once."""
    module = import_name(new)
    return [
        (r'(?m)^name = "[^"]*"$', f'name = "{new}"'),  # [project]
        (rf'(?m)^[A-Za-z0-9_.-]+ = "{old_module}\.__main__:main"$', f'{new} = "{module}.__main__:main"'),  # scripts
        (rf'(?m)^version = {{ attr = "{old_module}\.version\.__version__" }}$',
         f'version = {{ attr = "{module}.version.__version__" }}'),
        (rf'(?m)^include = \["{old_module}"\]$', f'include = ["{module}"]'),  # packages.find
        (rf'(?m)^{old_module} = (\[.*\])$', module + r" = \1"),  # package-data
    ]


def rewritten_pyproject(text: str, old_module: str, new: str) -> str:
    for pattern, replacement in _project_lines(old_module, new):
        text, count = re.subn(pattern, replacement, text)
        if count != 1:
            raise ConfigError(f"pyproject.toml has no line matching {pattern!r} to rename; restore it from git "
                              "(git checkout -- pyproject.toml) and run make rename again")
    return text


def rewritten_manifest(text: str, old_module: str, new: str) -> str:
    text, count = re.subn(rf"(?m)^graft src/{old_module}/models$", f"graft src/{import_name(new)}/models", text)
    if count != 1:
        raise ConfigError(f"MANIFEST.in has no line graft src/{old_module}/models to rename; restore it from git "
                          "(git checkout -- MANIFEST.in) and run make rename again")
    return text


def rewritten_dataset_config(text: str, new: str, description: str | None = None) -> str:
    """dataset.toml with ``[package] name = "<new>"`` (the line replaced, or the table added at the top) and,
    when given, ``description = "..."`` (its line replaced, or added after the name)."""
    package = tomllib.loads(text).get("package")
    if isinstance(package, dict) and "name" in package:
        lines = text.splitlines(keepends=True)
        table = next(i for i, line in enumerate(lines) if line.strip() == "[package]")
        end = next((i for i in range(table + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        name = _key_line(lines, table, end, "name")
        lines[name] = f'name = "{new}"\n'
        if description is not None:
            line = f"description = {_toml_string(description)}\n"
            if "description" in package:
                lines[_key_line(lines, table, end, "description")] = line
            else:
                lines.insert(name + 1, line)
        return "".join(lines)
    if package is not None:
        raise ConfigError('dataset.toml: [package] has no name = "..." line; add one and run make rename again')
    described = f"description = {_toml_string(description)}\n" if description is not None else ""
    return (f'[package]\n# The model package\'s name: change it with make rename NAME=...\nname = "{new}"\n'
            f"{described}\n" + text)


def _key_line(lines: list[str], table: int, end: int, key: str) -> int:
    """The line of [package] (lines table..end) that sets ``key``."""
    for i in range(table + 1, end):
        if re.match(rf"\s*{key}\s*=", lines[i]):
            return i
    raise ConfigError(f'dataset.toml: [package] {key} is not on a line of its own; write it as {key} = "..." '
                      "under [package] and run make rename again")


def _toml_string(text: str) -> str:
    """A checked description as a TOML basic string (one printable line: only quotes and backslashes to escape)."""
    return json.dumps(text, ensure_ascii=False)


def rewritten_lock(text: str, old: str, new: str) -> str:
    """requirements.lock with the project's own entries of its ``# via`` comments renamed; uv lists the
    project (``name (pyproject.toml:group)``) before the packages that need a pin, so nothing moves.

    >>> print(rewritten_lock("x==1\\n    # via\\n    #   mymodel (pyproject.toml:pipeline)\\n    #   mymodel-x\\n",
    ...                      "mymodel", "titanic-survival"), end="")
    x==1
        # via
        #   titanic-survival (pyproject.toml:pipeline)
        #   mymodel-x
    """
    return re.sub(rf"(?m)^(\s*#(?: via|  ) ){re.escape(old)}( \(pyproject\.toml:)", rf"\g<1>{new}\g<2>", text)


def _checked_texts(new_texts: dict[str, str], new: str) -> None:
    """Each rewritten TOML file parses and names ``new``: a name that slipped past the checks (one
    TOML cannot hold as a bare key) stops the rename before anything is written."""
    for name in ("dataset.toml", "pyproject.toml"):
        try:
            parsed = tomllib.loads(new_texts[name])
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"renaming to {new} would make {name} invalid TOML ({exc}); nothing was changed: "
                              "choose another name") from None
        named = parsed.get("package" if name == "dataset.toml" else "project", {}).get("name")
        if name == "dataset.toml":
            description_of(parsed)
        if named != new:
            raise ConfigError(f"renaming to {new} would leave {name} naming {named!r}; nothing was changed: "
                              f"restore {name} from git and run make rename again")


def _written(targets: dict[Path, str]) -> list[tuple[Path, Path]]:
    """Each text in a temporary file beside its target (same folder, so the move is a rename): (temporary, target)."""
    staged = []
    try:
        for target, text in targets.items():
            temporary = target.with_name(f".{target.name}.rename-{os.getpid()}")
            temporary.write_text(text, encoding="utf-8")
            if target.exists():
                shutil.copymode(target, temporary)
            staged.append((temporary, target))
    except OSError as exc:
        _discard(staged)
        raise ConfigError(f"cannot write beside {target} ({exc.strerror}); nothing was changed: free some space "
                          "or make the folder writable, then run make rename again") from None
    return staged


def _discard(staged: list[tuple[Path, Path]]) -> None:
    for temporary, _ in staged:
        temporary.unlink(missing_ok=True)


def rename(repo: Path, current: str, requested: str | None, description: str | None = None) -> str:
    """Rename the package in ``repo`` from ``current`` to ``requested`` (``description``: its new Summary,
    None to keep dataset.toml's); what to do next, to print."""
    if not requested:
        raise ConfigError("make rename needs the new name: make rename NAME=titanic-survival")
    new = check(requested, "NAME", "NAME={}")
    if description is not None:
        description = check_description(description, "DESCRIPTION")
    if new == current:
        return f"the package is already named {new}; nothing to change"
    check_distinct(new, current)
    check_unclaimed(new)
    old_module, new_module = import_name(current), import_name(new)
    source, target = repo / "src" / old_module, repo / "src" / new_module
    if not source.is_dir():
        raise ConfigError(f"src/{old_module}/ (the package {current}) is not there; restore it from git "
                          f"(git checkout -- src/{old_module}) and run make rename again")
    if target.exists():
        raise ConfigError(f"src/{new_module}/ already exists; move it away and run make rename NAME={new} again")
    files = {name: repo / name for name in ("dataset.toml", "pyproject.toml", "MANIFEST.in", LOCK_FILE)}
    texts = {name: path.read_text(encoding="utf-8") for name, path in files.items() if path.is_file()}
    new_texts = {"dataset.toml": rewritten_dataset_config(texts["dataset.toml"], new, description),
                 "pyproject.toml": rewritten_pyproject(texts["pyproject.toml"], old_module, new),
                 "MANIFEST.in": rewritten_manifest(texts["MANIFEST.in"], old_module, new)}
    if LOCK_FILE in texts:
        new_texts[LOCK_FILE] = rewritten_lock(texts[LOCK_FILE], current, new)
    _checked_texts(new_texts, new)
    staged = _written({files[name]: text for name, text in new_texts.items()})
    tracked = git_output("ls-files", "--", f"src/{old_module}", cwd=repo)
    try:
        if tracked:
            if git_output("mv", f"src/{old_module}", f"src/{new_module}", cwd=repo) is None:
                raise ConfigError(f"git mv src/{old_module} src/{new_module} failed; nothing was changed: "
                                  "check git status and run make rename again")
        else:
            shutil.move(source, target)
    except BaseException:
        _discard(staged)
        raise
    lock = files[LOCK_FILE]
    lock_times = (lock.stat().st_atime_ns, lock.stat().st_mtime_ns) if lock.is_file() else None
    for temporary, destination in staged:
        os.replace(temporary, destination)
    if lock_times:  # only comments changed: the venv (built from the lock) needs no reinstall
        os.utime(lock, ns=lock_times)
    for temporary, destination in _written({target / "version.py": version_file_text(INITIAL_VERSION)}):
        os.replace(temporary, destination)
    summary = description_of(tomllib.loads(new_texts["dataset.toml"]))
    return (f"renamed the package {current} -> {new}: pip install {new}, import {new_module}, "
            f"python -m {new_module} and the {new} command\n"
            f"its description (the Summary pip show and the registry page show): {summary!r}"
            + ("" if description is not None else '; change it with DESCRIPTION="..." or dataset.toml [package] '
                                                   "description") + "\n"
            f"changed: dataset.toml [package] name, src/{old_module}/ -> src/{new_module}/, pyproject.toml, MANIFEST.in, "
            f"{LOCK_FILE} (its # via comments), "
            f"src/{new_module}/version.py (reset: {new} is a new project on the index, so its first release is its "
            f"first version; releases/{current}-*.txt stay as history)\n"
            f"commit it: git add -A dataset.toml pyproject.toml MANIFEST.in {LOCK_FILE} src && "
            f"git commit -m 'Rename the package to {new}'\n"
            f"then: make index-stop && make index (the index serves the name it starts with), make release")
