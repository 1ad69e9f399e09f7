"""``python -m <package> info | predict | validate``, and the console script named as the distribution."""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from . import store
from .contract import SHOWN_METRICS, task_of
from .errors import MymodelError


def _package() -> Any:
    """The package this module is part of, whatever its name."""
    return importlib.import_module(__package__)


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description="The packaged models.")
    commands = main_parser.add_subparsers(dest="command", required=True)
    for name, text in (("info", "version, data tag and the metrics of every model"),
                       ("predict", "predict rows read from CSV or JSON lines"),
                       ("validate", "are the installed libraries the ones the models need? exit 1 if not")):
        commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    predict = commands.choices["predict"]
    predict.add_argument("--model", required=True, help=f"a name from `python -m {__package__} info`")
    predict.add_argument("--input", default="-", help="a .csv or .jsonl file, or - for stdin (default)")
    predict.add_argument("--input-format", choices=("csv", "jsonl"),
                         help="default: from the file name (.csv, .jsonl, .json), else jsonl if the input "
                              "starts with '{', else csv")
    predict.add_argument("--output-format", choices=("csv", "jsonl"), default="csv")
    return main_parser


def info(out: TextIO) -> int:
    meta = _package().metadata()
    out.write(f"{store.DISTRIBUTION} {_package().__version__} (data tag: {meta['data_tag'] or '-'})\n")
    for line in release_lines(meta["release"]):
        out.write(f"{line}\n")
    by_task: dict[str, dict[str, dict]] = {}
    for name, model in meta["models"].items():
        by_task.setdefault(task_of(model), {})[name] = model
    for task, models in by_task.items():
        shown = SHOWN_METRICS[task]
        out.write(f"{task}: {describe_target(next(iter(models.values())))}\n")
        width = max(24, *(len(name) + 2 for name in models))
        out.write(f"{'model':<{width}}" + "".join(f"{key:>18}" for key, _ in shown) + "\n")
        for name, model in models.items():
            out.write(f"{name:<{width}}" + "".join(f"{model['metrics'].get(key, float('nan')):>18.4f}" for key, _ in shown) + "\n")
    return 0


def release_lines(notes: Any) -> list[str]:
    """The release notes the build recorded (why this version number, the gate), as lines of text."""
    if not isinstance(notes, dict):
        return []
    lines = []
    for key, value in notes.items():
        facts = value if isinstance(value, dict) else {}
        against = f" against {facts['against']}" if facts.get("against") else ""
        if key == "bump" and facts:
            kind = f" ({facts['kind']} change)" if facts.get("kind") else ""
            reasons = _plain(facts.get("reasons"))
            lines.append(f"version: {facts.get('part', '?')}{kind}{against}" + (f": {reasons}" if reasons else ""))
        elif key == "bump_overridden" and facts:
            lines.append(f"bump overridden (FORCE=1): {facts.get('used')} instead of the required "
                         f"{facts.get('required')}{against}")
        elif key == "gate" and facts:
            better = "lower" if facts.get("lower_is_better") else "higher"
            limits = _plain({k: v for k, v in facts.items() if k not in ("metric", "lower_is_better")})
            lines.append(f"gate: {facts.get('metric')}, {better} is better" + (f", {limits}" if limits else ""))
        elif key in ("gate_skipped", "comparison_skipped") and facts:
            what = "gate" if key == "gate_skipped" else "contract"
            lines.append(f"{what} not compared{against}: {facts.get('reason')}")
        elif key == "gate_overridden" and facts:
            limits = _plain({k: v for k, v in facts.items() if k not in ("against", "models")})
            lines.append(f"gate overridden (FORCE=1){against}: {_plain(facts.get('models'))}"
                         + (f" ({limits})" if limits else ""))
        else:
            lines.append(f"{key.replace('_', ' ')}: {_plain(value)}")
    return lines


def _plain(value: Any) -> str:
    """A JSON value as words: lists joined with '; ', objects as 'key value' pairs."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}".rstrip() for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value)
    return "" if value is None else str(value)


def describe_target(model: dict[str, Any]) -> str:
    """What a model predicts, in words: e.g. ``predicts 'price' (USD)`` or ``predicts 'survived': 0, 1``."""
    target = f"predicts {model.get('data', {}).get('target', '?')!r}"
    if task_of(model) == "regression":
        return target + (f" ({model['target_units']})" if model.get("target_units") else "")
    return target + ": one of " + ", ".join(model.get("classes", []))


def read_rows(source: TextIO, fmt: str) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        rows = []
        for number, line in enumerate(source, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise MymodelError(f"input line {number} is not JSON ({exc.msg}); write one JSON object per line") from None
        return rows
    # CSV cells are text; an empty cell is a missing value. The schema converts numbers.
    return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(source)]


def read_input(name: str) -> str:
    """The whole input as text, decoded strictly as UTF-8 whether it comes from a file or stdin."""
    where = "standard input" if name == "-" else name
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise MymodelError(f"cannot read {where} ({exc.strerror}); check the path") from None
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as some spreadsheets write, is not data
    except UnicodeDecodeError as exc:
        raise MymodelError(f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                           "save the file as UTF-8") from None


def input_format(name: str, text: str) -> str:
    """What the input is, without --input-format: the file's extension says, else its content
    (standard input has no name): JSON lines start with an object, a CSV with its header."""
    if name.endswith((".jsonl", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def predict(args: argparse.Namespace, out: TextIO) -> int:
    text = read_input(args.input)
    rows = read_rows(io.StringIO(text, newline=""), args.input_format or input_format(args.input, text))
    result = _package().predict(args.model, rows)
    # A DataFrame, or (the -onnx package without pandas) a list of dicts: written the same way.
    records = result.to_dict(orient="records") if hasattr(result, "to_dict") else result
    if args.output_format == "jsonl":
        for record in records:
            out.write(json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}) + "\n")
    elif hasattr(result, "to_csv"):
        result.to_csv(out, index=False, lineterminator="\n")
    else:
        writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    return 0


def validate(out: TextIO) -> int:
    from .environment import checks

    rows = checks()
    width = max(16, *(len(check.library) + 2 for check in rows)) if rows else 16
    out.write(f"{'library':<{width}}{'trained with':>14}{'required':>20}{'installed':>14}  ok\n")
    for check in rows:
        out.write(f"{check.library:<{width}}{check.trained_with:>14}{check.required:>20}"
                  f"{check.installed or '-':>14}  {'yes' if check.ok else 'NO'}\n")
    bad = [c for c in rows if not c.ok]
    if bad:
        out.write(f"incompatible: {', '.join(c.library for c in bad)}; install the required versions, "
                  f"or pin a {store.DISTRIBUTION} version trained with yours\n")
        for check in bad:
            out.write(f"- {check.problem}\n")
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "info":
            return info(sys.stdout)
        if args.command == "predict":
            return predict(args, sys.stdout)
        return validate(sys.stdout)
    except MymodelError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
