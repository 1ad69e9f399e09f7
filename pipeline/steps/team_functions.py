"""Functions of the team's modules that dataset.toml names as ``"<module>:<function>"``.

A model's ``factory`` and ``fit``, the ``[dataset] source`` loader and a team metric of
``[evaluation] metrics`` are all functions of a module in the package folder
(src/<import name>/<module>.py), imported as ``<import name>.<module>``: what they pickle
loads from the installed package. This module finds one, or says in one line why it
cannot: no such module, a module that fails to import, no such function (with the
closest name it has), or something that is not a function.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.package.package_name import IMPORT_NAME

PACKAGE = IMPORT_NAME  # the package the team's modules are imported from (tests point it at their own)
REFERENCE = re.compile(r"(?P<module>[A-Za-z_]\w*):(?P<function>[A-Za-z_]\w*)")
ERROR_LINE_LIMIT = 200  # characters of a library's own error shown in a message


def is_reference(text: object) -> bool:
    """Does ``text`` name a team function (``"features:make_pipeline"``)?

    >>> is_reference("data:load"), is_reference("data/train.csv"), is_reference("f1_macro")
    (True, False, False)
    """
    return isinstance(text, str) and REFERENCE.fullmatch(text) is not None


def team_function(reference: str, key: str, signature: str, error: type[PipelineError],
                  package: str | None = None) -> Callable[..., Any]:
    """The function ``reference`` ("module:function") names in the package, imported as
    ``<package>.<module>``. ``key`` says where dataset.toml names it (the start of every message),
    ``signature`` how to define the function (``load()``); ``error`` is the error raised."""
    package = package or PACKAGE
    module_name, _, function_name = reference.partition(":")
    where = module_file(package, module_name)
    try:
        module = importlib.import_module(f"{package}.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{package}.{module_name}":
            raise error(f"{key}: there is no module {where}; add it to the package folder "
                        "or fix the module name") from None
        raise error(f"{key}: {where} cannot be imported ({one_line(exc)}); fix the module, or add the "
                    "missing library to the train group of pyproject.toml and run make requirements") from None
    except Exception as exc:
        raise error(f"{key}: {where} cannot be imported ({one_line(exc)}); fix the module") from None
    function = getattr(module, function_name, None)
    if function is None:
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        close = difflib.get_close_matches(function_name, names, n=1)
        hint = f"did you mean {module_name}:{close[0]}? " if close else ""
        raise error(f"{key}: {where} has no function {function_name}; {hint}define def {signature} there")
    if not callable(function):
        raise error(f"{key}: {module_name}.{function_name} in {where} is a {type(function).__name__}, not a "
                    f"function; define def {signature}")
    return function


def module_file(package: str | None, module: str) -> str:
    """Where a module of the package is (or would be), as the repository spells it: src/mymodel/features.py."""
    package = package or PACKAGE
    folder = Path(importlib.import_module(package).__file__).parent
    file = folder / f"{module}.py"
    try:
        return str(file.relative_to(folder.parent.parent))
    except ValueError:
        return str(file)


def one_line(exc: BaseException) -> str:
    """An exception as ``Type: first line``, bounded: messages stay one line."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= ERROR_LINE_LIMIT else text[:ERROR_LINE_LIMIT] + "…"
