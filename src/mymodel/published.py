"""A published build's JSON files, parsed and validated: the one reader of what a wheel says.

Everything an index serves is hostile input. The registry page, ``make versions``,
``make diff``, ``make verify`` and the release gate read ``models/manifest.json`` and each
``models/<name>/metadata.json`` of a wheel through these functions, which check that every
field a reader uses has the type it needs. A file that does not parse, or holds ``null``
where an object goes, a string where a number goes, a number that is not finite or beyond
any a build writes, or nesting deeper than a build's, raises ``MalformedBuild`` naming the
file and the field: the version is shown as unreadable, with that reason. Fields no reader
uses are left as they are. Standard library only: the package ships it, and the index and
the pipeline import it.

    >>> check_metadata({"metrics": None}, "SVC/metadata.json")
    Traceback (most recent call last):
    ...
    mymodel.errors.MalformedBuild: SVC/metadata.json: metrics is null, not an object
    >>> check_metadata({"metrics": {"accuracy": 0.8}}, "SVC/metadata.json")
    {'metrics': {'accuracy': 0.8}}
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from .errors import MalformedBuild
from .store import MANIFEST_FILE, METADATA_FILE, PACKAGE

EVALUATION_FILE = "evaluation.json"  # models/<name>/evaluation.json: the numbers of a model's figures

MAX_NUMBER = 1e15  # beyond any metric, count or seed a build writes; larger ones break tables and arithmetic
MAX_DEPTH = 32  # a build nests 4 levels; deeper documents would overflow the recursive readers
# What reading a member of a damaged or hostile zip archive can raise, besides OSError.
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, KeyError,
                  struct.error, ValueError)

Check = Callable[[Any, str], None]


def read_build(names: Iterable[str], read: Callable[[str], bytes], package: str = PACKAGE) -> tuple[dict, dict]:
    """(manifest, {model name: metadata}) of a wheel whose member names are ``names``, each member's
    bytes from ``read``; the manifest is ``{}`` when the wheel has none (not built by a pipeline)."""
    prefix = f"{package}/models/"
    names = sorted(names)
    manifest = {}
    if prefix + MANIFEST_FILE in names:
        manifest = check_manifest(parse(_member(read, prefix + MANIFEST_FILE, MANIFEST_FILE), MANIFEST_FILE))
    models = {}
    for name in names:
        if name.startswith(prefix) and name.endswith("/" + METADATA_FILE) and name.count("/") == 3:
            model = name.removeprefix(prefix).split("/")[0]
            where = f"{model}/{METADATA_FILE}"
            models[model] = check_metadata(parse(_member(read, name, where), where), where)
    return manifest, models


def _member(read: Callable[[str], bytes], name: str, where: str) -> bytes:
    try:
        return read(name)
    except MalformedBuild:
        raise
    except ARCHIVE_ERRORS as exc:  # a damaged member, or one the central directory lists but the archive lacks
        raise MalformedBuild(f"{where}: cannot be read from the archive ({_first_line(exc)})") from None


def parse(raw: bytes, where: str) -> Any:
    """The JSON document in ``raw`` (UTF-8, -16 or -32)."""
    try:
        document = json.loads(raw)
    except RecursionError:
        raise MalformedBuild(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # bad JSON or text encoding, an integer of more than 4300 digits
        raise MalformedBuild(f"{where}: not JSON ({_first_line(exc)})") from None
    _check_depth(document, where)
    return document


def check_build(manifest: Any, models: Any) -> None:
    """Both kinds of file again, e.g. for a copy kept by an older reader that accepted more."""
    check_manifest(manifest)
    if not isinstance(models, dict):
        raise MalformedBuild(f"the models are {_shown(models)}, not an object")
    for name, metadata in models.items():
        check_metadata(metadata, f"{name}/{METADATA_FILE}")


def built_from(models: Any) -> str:
    """The commit a build's models were trained at, as their metadata records it (a channel's history
    shows it): one commit, several (a build mixing them), or why there is none.

    >>> built_from({"SVC": {"git": {"commit": "abc", "dirty": True}}, "LR": {"git": {"commit": "abc"}}})
    'abc, abc (uncommitted changes)'
    >>> built_from({"SVC": {"git": None}}), built_from(None)
    ('unknown (its wheel records no commit)', 'unknown (its wheel records no commit)')
    """
    commits = set()
    for metadata in models.values() if isinstance(models, dict) else ():
        git = metadata.get("git") if isinstance(metadata, dict) else None
        if isinstance(git, dict) and isinstance(git.get("commit"), str):
            commits.add(git["commit"] + (" (uncommitted changes)" if git.get("dirty") is True else ""))
    return ", ".join(sorted(commits)) or "unknown (its wheel records no commit)"


def check_manifest(document: Any, where: str = MANIFEST_FILE) -> dict:
    return _checked(document, _MANIFEST, where)


def check_metadata(document: Any, where: str) -> dict:
    return _checked(document, _METADATA, where)


def check_evaluation(document: Any, where: str) -> dict:
    """A model's evaluation.json: curves, confusion matrix, predictions, importance, the baseline's curves."""
    return _checked(document, _EVALUATION, where)


def _checked(document: Any, check: Check, where: str) -> dict:
    _check_depth(document, where)
    try:
        check(document, "")
    except _Wrong as exc:
        raise MalformedBuild(f"{where}: {exc}") from None
    return document


# The checks: each takes the value and its field path ("metrics.accuracy"; "" for the document) ----------


class _Wrong(Exception):
    """A field of the wrong kind; ``MalformedBuild`` adds the file's name."""


def _text(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _wrong(path, value, "a string")


def _flag(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise _wrong(path, value, "true or false")


def _number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(path, value, "a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _wrong(path, value, "a finite number")
    if abs(value) > MAX_NUMBER:
        raise _wrong(path, value, f"a number within ±{MAX_NUMBER:g}")


def _count(value: Any, path: str) -> None:
    _number(value, path)
    if not isinstance(value, int) or value < 0:
        raise _wrong(path, value, "a whole number of 0 or more")


def _sha256(value: Any, path: str) -> None:
    _text(value, path)
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise _wrong(path, value, "a sha256 (64 hex digits)")


def _scalar(value: Any, path: str) -> None:
    """Text, true or false, or a number (as _number checks it)."""
    if not isinstance(value, (str, bool)):
        _number(value, path)


def _anything(value: Any, path: str) -> None:
    pass


def _optional(check: Check) -> Check:
    def optional(value: Any, path: str) -> None:
        if value is not None:
            check(value, path)
    return optional


def _list_of(check: Check) -> Check:
    def list_of(value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise _wrong(path, value, "a list")
        for i, item in enumerate(value):
            check(item, f"{path}[{i}]")
    return list_of


def _map_of(check: Check) -> Check:
    """An object whose every value passes ``check``."""
    def map_of(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _wrong(path, value, "an object")
        for key, item in value.items():
            check(item, _joined(path, key))
    return map_of


def _same_length(check: Check, *keys: str) -> Check:
    """``check``, and the lists under ``keys`` (the coordinates of one curve) are as long as each other."""
    def same_length(value: Any, path: str) -> None:
        check(value, path)
        lengths = {len(value[key]) for key in keys if key in value}
        if len(lengths) > 1:
            raise _Wrong(f"{path}: {' and '.join(keys)} have different lengths")
    return same_length


def _object(required: Iterable[str] = (), **fields: Check) -> Check:
    """An object whose ``fields`` that are present pass their checks; the ``required`` ones must be."""
    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _wrong(path, value, "an object")
        for key in required:
            if key not in value:
                raise _Wrong(f"{_joined(path, key)} is missing")
        for key, field_check in fields.items():
            if key in value:
                field_check(value[key], _joined(path, key))
    return check


_COLUMN = _object(required=("name", "dtype"), name=_text, dtype=_text, allows_missing=_flag, categories=_list_of(_text))
_METADATA = _object(
    name=_text, estimator=_text, params=_map_of(_anything), metrics=_map_of(_number), task=_text,
    classes=_list_of(_text), target_units=_optional(_text),
    input_schema=_object(columns=_list_of(_COLUMN), unseen_categories=_optional(_text)),
    data=_object(sha256=_optional(_text), source=_optional(_text), tag=_optional(_text), target=_optional(_text),
                 rows=_count, split=_object(seed=_count, test_size=_number, train_rows=_count, test_rows=_count)),
    training_environment=_map_of(_optional(_text)),
    git=_object(commit=_optional(_text), dirty=_optional(_flag)),
    onnx=_object(required=("status",), status=_text, reason=_text, sha256=_sha256),
    per_class=_map_of(_object(precision=_number, recall=_number, f1=_number, support=_count)),
    fit=_object(function=_text, params=_map_of(_anything), recorded=_map_of(_optional(_scalar))),
)
_MANIFEST = _object(
    version=_text, data_tag=_optional(_text), requires=_map_of(_text), files=_map_of(_sha256), onnx=_map_of(_sha256),
    release=_object(bump=_optional(_object(part=_optional(_text), kind=_optional(_text), reasons=_list_of(_text)))),
    figures=_map_of(_map_of(_text)),  # model -> figure kind -> its file, relative to models/
)
_NUMBERS = _list_of(_number)
_CURVES = _object(
    roc=_same_length(_object(required=("fpr", "tpr"), fpr=_NUMBERS, tpr=_NUMBERS, auc=_number), "fpr", "tpr"),
    precision_recall=_same_length(_object(required=("precision", "recall"), precision=_NUMBERS, recall=_NUMBERS,
                                          average_precision=_number, prevalence=_number), "precision", "recall"),
    calibration=_same_length(_object(required=("prob_true", "prob_pred"), prob_true=_NUMBERS, prob_pred=_NUMBERS),
                             "prob_true", "prob_pred"),
)
_EVALUATION = _object(
    required=("task",), task=_text, rows=_count, classes=_list_of(_text), confusion_matrix=_list_of(_list_of(_count)),
    curves=_map_of(_CURVES),
    predictions=_same_length(_object(required=("actual", "predicted", "of_rows"), actual=_NUMBERS, predicted=_NUMBERS,
                                     of_rows=_count), "actual", "predicted"),
    permutation_importance=_object(required=("columns",), scoring=_text, repeats=_count,
                                   columns=_map_of(_object(required=("mean", "std"), mean=_number, std=_number))),
    baseline=_object(required=("version", "rows", "curves"), version=_text, rows=_count, curves=_map_of(_CURVES)),
)


def _joined(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _wrong(path: str, value: Any, expected: str) -> _Wrong:
    return _Wrong(f"{path or 'the document'} is {_shown(value)}, not {expected}")


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        return f"a {len(str(abs(value)))}-digit number"
    shown = json.dumps(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _check_depth(document: Any, where: str) -> None:
    """Iteratively, so a deep document cannot exhaust the stack here either."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise MalformedBuild(f"{where}: nested deeper than {MAX_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        pending.extend((child, depth + 1) for child in children)


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."
