"""The distributions a package's models need at run time, found without unpickling them.

A pickle names every class and function it rebuilds by module and qualified name (the
GLOBAL, STACK_GLOBAL and INST opcodes). ``pickletools.genops`` reads those opcodes without
running any of them; a small symbolic stack follows the strings STACK_GLOBAL takes its names
from. A joblib file is such a pickle, possibly compressed, with each numpy array's bytes
written into the stream right after the BUILD of its ``NumpyArrayWrapper``: the wrapper's
recorded shape and dtype say how many bytes to skip (an object array is a nested pickle,
scanned the same way).

Module names map to distributions with ``importlib.metadata.packages_distributions()``;
the standard library and the package itself (its modules ship in the wheel) need none.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.metadata
import lzma
import math
import pickletools
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

from pipeline.config import IMPORT_NAME, REQUIREMENT_RANGES, REQUIREMENT_FLOORS
from pipeline.errors import RequirementError
from pipeline.steps.team_code import ONNX_HOOK

ARRAY_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
SKIP_BLOCK = 1 << 20  # array bytes are skipped in blocks: memory stays flat whatever the array's size
# What joblib's decompressors raise for a damaged stream (lz4's raises RuntimeError).
DAMAGED_STREAM = (OSError, EOFError, ValueError, RuntimeError, zlib.error, lzma.LZMAError)
_NPY_ITEM_HASOBJECT = 0x01  # numpy dtype flag (item 7 of a dtype's pickled state): elements are objects


class ScanError(Exception):
    """The file is not a pickle this scan can follow."""


@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass(eq=False)
class Constructed:
    """What REDUCE, NEWOBJ or OBJ would have made: never made, only remembered."""

    callable: Any
    args: Any
    state: Any = None


@dataclass
class _Scan:
    stream: IO[bytes]
    globals: set[Global] = field(default_factory=set)


_MARK = object()
_CONSTANT_NAMES = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_IGNORED = {"PROTO", "FRAME"}


def pickle_globals(stream: IO[bytes], arrays_inline: bool = False) -> set[Global]:
    """Every (module, name) one pickle in ``stream`` refers to; reads up to its STOP.

    ``arrays_inline``: the stream is joblib's, with array bytes after each NumpyArrayWrapper.
    """
    scan = _Scan(stream)
    _run(scan, arrays_inline)
    return scan.globals


def _run(scan: _Scan, arrays_inline: bool) -> None:
    stack: list[Any] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        for index in range(len(stack) - 1, -1, -1):
            if stack[index] is _MARK:
                items = stack[index + 1:]
                del stack[index:]
                return items
        raise ScanError("MARK expected on the stack")

    def pop() -> Any:
        if not stack:
            raise ScanError("the stack is empty")
        return stack.pop()

    def found(module: Any, name: Any) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise ScanError("a global's module or name is not a string")
        reference = Global(module, name)
        scan.globals.add(reference)
        return reference

    try:
        for opcode, arg, _ in pickletools.genops(scan.stream):
            name = opcode.name
            if name == "STOP":
                return
            if name in _IGNORED:
                continue
            if name in _CONSTANT_NAMES:
                stack.append(_CONSTANT_NAMES[name])
            elif name == "MARK":
                stack.append(_MARK)
            elif name in ("GLOBAL", "INST"):
                module, _, qualname = arg.partition(" ")
                reference = found(module, qualname)
                if name == "INST":
                    stack.append(Constructed(reference, tuple(pop_mark())))
                else:
                    stack.append(reference)
            elif name == "STACK_GLOBAL":
                qualname, module = pop(), pop()
                stack.append(found(module, qualname))
            elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
                stack.append({"EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_SET": list}[name]())
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("LIST", "TUPLE", "FROZENSET"):
                items = pop_mark()
                stack.append(items if name == "LIST" else tuple(items))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                count = int(name[-1])
                if len(stack) < count:
                    raise ScanError(f"{name} needs {count} items")
                items = tuple(stack[-count:])
                del stack[-count:]
                stack.append(items)
            elif name == "DICT":
                items = pop_mark()
                stack.append(_pairs({}, items))
            elif name in ("APPEND", "APPENDS", "ADDITEMS"):
                items = [pop()] if name == "APPEND" else pop_mark()
                target = stack[-1] if stack else None
                if isinstance(target, list):
                    target.extend(items)
            elif name in ("SETITEM", "SETITEMS"):
                items = [pop(), pop()][::-1] if name == "SETITEM" else pop_mark()
                target = stack[-1] if stack else None
                if isinstance(target, dict):
                    _pairs(target, items)
            elif name == "POP":
                pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1] if stack else _missing())
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = stack[-1] if stack else _missing()
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else _missing()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg) not in memo:
                    raise ScanError(f"memo entry {arg} is read before it is written")
                stack.append(memo[int(arg)])
            elif name == "REDUCE":
                args = pop()
                stack.append(Constructed(pop(), args))
            elif name == "NEWOBJ":
                args = pop()
                stack.append(Constructed(pop(), args))
            elif name == "NEWOBJ_EX":
                _kwargs, args = pop(), pop()
                stack.append(Constructed(pop(), args))
            elif name == "OBJ":
                items = pop_mark()
                if not items:
                    raise ScanError("OBJ without a class")
                stack.append(Constructed(items[0], tuple(items[1:])))
            elif name == "BUILD":
                state = pop()
                target = stack[-1] if stack else _missing()
                if isinstance(target, Constructed):
                    target.state = state
                    if arrays_inline and target.callable == Global(*ARRAY_WRAPPER):
                        _skip_array(scan, target.state)
                        stack[-1] = Constructed(Global("numpy", "ndarray"), ())
            elif name in ("EXT1", "EXT2", "EXT4"):
                raise ScanError(f"{name} names a global by a copyreg extension code, which cannot be read safely")
            elif name in ("PERSID", "BINPERSID"):
                raise ScanError("persistent ids refer to objects outside the file")
            elif name in ("NEXT_BUFFER", "READONLY_BUFFER"):
                if name == "NEXT_BUFFER":
                    stack.append(None)
            elif opcode.arg is not None:  # every other opcode pushes the value it carries
                stack.append(arg)
            else:
                raise ScanError(f"opcode {name} is not known to the scan")
    except ValueError as exc:  # pickletools: an unknown opcode, or an argument cut short
        raise ScanError(str(exc)) from None
    raise ScanError("the pickle ends without STOP")


def _missing() -> Any:
    raise ScanError("the stack is empty")


def _pairs(target: dict, items: list[Any]) -> dict:
    if len(items) % 2:
        raise ScanError("a dictionary has an odd number of items")
    for key, value in zip(items[::2], items[1::2]):
        with contextlib.suppress(TypeError):  # an unhashable key: nothing this scan needs
            target[key] = value
    return target


def _skip_array(scan: _Scan, state: Any) -> None:
    """Read past the array bytes joblib wrote after a NumpyArrayWrapper (its read_array, without numpy)."""
    if not isinstance(state, dict):
        raise ScanError("a NumpyArrayWrapper has no state")
    shape, dtype = state.get("shape"), state.get("dtype")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ScanError("a NumpyArrayWrapper has no shape")
    itemsize, has_objects = _dtype_layout(dtype)
    if has_objects:
        _run(scan, arrays_inline=False)  # joblib pickles an object array as a pickle of its own
        return
    if state.get("numpy_array_alignment_bytes") is not None:
        padding = scan.stream.read(1)
        _skip(scan.stream, int.from_bytes(padding, "little") if padding else _truncated())
    _skip(scan.stream, math.prod(shape) * itemsize)


def _dtype_layout(dtype: Any) -> tuple[int, bool]:
    """(item size in bytes, holds objects) from a pickled numpy dtype: ``dtype(descr, ...)`` and its state
    ``(version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])``."""
    if not (isinstance(dtype, Constructed) and isinstance(dtype.args, tuple) and dtype.args
            and isinstance(dtype.args[0], str) and isinstance(dtype.state, tuple) and len(dtype.state) >= 8):
        raise ScanError("a NumpyArrayWrapper's dtype cannot be read")
    descr, elsize, flags = dtype.args[0], dtype.state[5], dtype.state[7]
    if not isinstance(elsize, int) or not isinstance(flags, int):
        raise ScanError("a NumpyArrayWrapper's dtype cannot be read")
    if elsize > 0:
        return elsize, bool(flags & _NPY_ITEM_HASOBJECT)
    digits = descr.lstrip("<>|=").lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ?")
    if not digits.isdigit():
        raise ScanError(f"the item size of dtype {descr!r} cannot be read")
    return int(digits), bool(flags & _NPY_ITEM_HASOBJECT)


def _skip(stream: IO[bytes], count: int) -> None:
    while count > 0:
        block = stream.read(min(count, SKIP_BLOCK))
        if not block:
            _truncated()
        count -= len(block)


def _truncated() -> int:
    raise ScanError("the file ends inside an array")


@contextlib.contextmanager
def _decompressed(path: Path) -> Iterator[IO[bytes]]:
    """The pickle stream of a joblib file, decompressed as joblib.load does."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    with open(path, "rb") as raw, _validate_fileobject_and_memmap(raw, str(path)) as (stream, _):
        if isinstance(stream, str):
            raise ScanError("it was written by joblib older than 0.10")
        yield stream


def joblib_globals(path: Path) -> set[Global]:
    """Every global a joblib file's pickle refers to, arrays included; nothing is unpickled."""
    try:
        with _decompressed(path) as stream:
            return pickle_globals(stream, arrays_inline=True)
    except DAMAGED_STREAM as exc:
        raise ScanError(str(exc) or type(exc).__name__) from None


def needed_modules(references: set[Global]) -> dict[str, Global]:
    """Each module a set of globals needs, with one global that needs it (to name in errors)."""
    needed: dict[str, Global] = {}
    for reference in sorted(references, key=lambda g: (g.module, g.name)):
        needed.setdefault(reference.module, reference)
    return needed


def source_imports(sources: list[Path]) -> set[str]:
    """The top-level modules the package's own code imports (at module level or inside functions), except
    inside a team module's ONNX_HOOK: the release calls that, the installed package never does."""
    modules = set()
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
        release_only = {id(node) for hook in ast.walk(tree) if isinstance(hook, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and hook.name == ONNX_HOOK for node in ast.walk(hook)}
        for node in ast.walk(tree):
            if id(node) in release_only:
                continue
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return modules


def distributions(modules: dict[str, str]) -> dict[str, str]:
    """Distribution name -> where it is needed (``modules``: module -> where it is needed).

    The standard library and the package itself need none; a module no installed distribution
    provides is a RequirementError: the package could not be imported where it is installed either.
    """
    needed: dict[str, str] = {}
    for module, where in sorted(modules.items()):
        top = module.partition(".")[0]
        if top == IMPORT_NAME or top in sys.stdlib_module_names:
            continue
        names = _providers(module)
        if not names:
            raise RequirementError(f"{where} needs the module {top!r}, which no installed distribution provides "
                                   "(a class defined in a script or in this repository's pipeline/ is not shipped); "
                                   f"define it in an installed package or in src/{IMPORT_NAME}/, then train again")
        for name in names:
            needed.setdefault(_canonical(name), where)
    return needed


def _providers(module: str) -> list[str]:
    """The distributions that provide ``module``. A top-level name several distributions share (a
    namespace package such as ``google``) is narrowed to those whose files hold the module's own folder
    or file."""
    names = sorted(set(_provided().get(module.partition(".")[0], [])))
    if len(names) < 2 or "." not in module:
        return names
    path = module.replace(".", "/")
    holding = [name for name in names
               if any(str(f).startswith((path + "/", path + ".")) for f in importlib.metadata.distribution(name).files or ())]
    return holding or names


@functools.cache
def _provided() -> dict[str, list[str]]:
    """Top-level module -> distributions: read once per process (it reads every installed RECORD), and kept
    in the release cache (pipeline/cache.py) by the installed distributions' names and versions."""
    from pipeline import cache as work_cache

    cache = work_cache.open_release_cache()
    key = work_cache.digest({"work": PROVIDED_KIND, "environment": work_cache.environment()})
    entry = cache.get(PROVIDED_KIND, key) if cache else None
    provided = entry and entry.document.get("provided")
    if isinstance(provided, dict) and all(isinstance(names, list) and all(isinstance(n, str) for n in names)
                                          for names in provided.values()):
        return provided
    provided = importlib.metadata.packages_distributions()
    if cache:
        cache.put(PROVIDED_KIND, key, {"provided": provided})
    return provided


PROVIDED_KIND = "distributions"


def requirement(distribution: str, version: str) -> str:
    """The range a distribution trained at ``version`` is required in (pipeline/config.py REQUIREMENT_RANGES).

    >>> requirement("scikit-learn", "1.9.1"), requirement("numpy", "2.4.6"), requirement("lightgbm", "4.7.0")
    ('>=1.9.1,<1.10', '>=2.4,<3', '>=4.7,<4.8')
    >>> requirement("packaging", "26.3")
    '>=22'
    """
    from packaging.version import Version

    if distribution in REQUIREMENT_FLOORS:
        return REQUIREMENT_FLOORS[distribution]
    major, minor = (Version(version).release + (0, 0))[:2]
    rule = REQUIREMENT_RANGES.get(distribution, "minor")
    if rule == "major":
        return f">={major}.{minor},<{major + 1}"
    if rule == "patch-floor":
        return f">={version},<{major}.{minor + 1}"
    return f">={major}.{minor},<{major}.{minor + 1}"


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise RequirementError(f"the distribution {distribution!r} is needed by the models but not installed in "
                         "this venv; install it and train again") from None


def model_distributions(path: Path, where: str) -> dict[str, str]:
    """Distribution -> the global that needs it, for one joblib model file (``where`` names it in errors)."""
    try:
        references = joblib_globals(path)
    except ScanError as exc:
        raise RequirementError(f"{where} cannot be scanned for the libraries it needs ({exc}); "
                         "train again (make train) to rewrite it") from None
    modules = {module: f"{where} ({reference.module}.{reference.name})"
               for module, reference in needed_modules(references).items()}
    return distributions(modules)


def runtime_requirements(models: dict[str, Path], environment: dict[str, str], sources: list[Path]) -> dict[str, str]:
    """Distribution -> range: what the models' pickles and the package's own code import.

    ``models``: model name -> its joblib file; ``environment``: the versions the models were
    trained with (a training_environment), else the version installed here; ``sources``: the
    package's Python files that ship in the wheel.
    """
    needed: dict[str, str] = {}
    for name, path in sorted(models.items()):
        needed.update(model_distributions(path, f"the model {name!r}"))
    own = {module: f"src/{IMPORT_NAME}" for module in source_imports(sources)}
    needed.update(distributions(own))
    return {dist: requirement(dist, environment.get(dist) or installed_version(dist)) for dist in sorted(needed)}
