"""The evaluation figures a release ships: SVG drawn as scikit-learn's displays draw them, from evaluation.json.

The build (pipeline/steps/build.py) calls ``draw_all`` on the staged models, for a release
and for ``make verify`` alike, so both draw from the same numbers (each model's
evaluation.json, the published baseline's curves included) and the rebuilt wheel is
byte-identical. The bytes depend on nothing else: no date (``metadata={"Date": None}``),
fixed element ids (``svg.hashsalt``), text kept as SVG text (``svg.fonttype = "none"``,
so no glyph of this machine's fonts is embedded) laid out with the metrics of
matplotlib's own DejaVu Sans, and text never read as mathtext (a label ``$x$`` is shown
as written). Each figure is kept by the digest of its numbers, the library versions
and this module's source in the release cache (pipeline/cache.py): a warm release imports
no matplotlib when nothing changed. The versions a curve figure's legend names are not part of
that key: the figure is drawn with stand-ins (each version with its digits replaced, so the same
width in DejaVu Sans, whose digits are all equally wide) and the versions are written into
the SVG text afterwards, which gives the bytes drawing them would (a unit test holds it). A
release of the same models, whose curves and the baseline's are those of the last release,
draws nothing again.
"""

from __future__ import annotations

import functools
import io
import json
import re
import time
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline.config import CLASSIFICATION
from pipeline.package.own_package import contract
from pipeline import cache
from pipeline.steps.evaluation import EVALUATION_FILE

FIGURES_FOLDER = "figures"
KINDS = {task: tuple(kind for kind, _ in shown) for task, shown in contract.FIGURES.items()}
TITLES = contract.FIGURE_TITLES
BASELINE_KINDS = frozenset({"roc", "precision_recall", "calibration"})  # where the published baseline's curves go
CACHE_KIND = "figure"
SVG = "figure.svg"  # the file of a figure's cache entry
_drawn = {"count": 0}  # figures rendered (not taken from the cache) in this process
# Fixed look, and nothing taken from the machine: matplotlib's bundled DejaVu Sans is found before any system copy.
STYLE = {"svg.hashsalt": "evaluation-figures", "svg.fonttype": "none", "svg.id": None, "font.family": "DejaVu Sans",
         "font.size": 9.0, "text.parse_math": False, "text.usetex": False, "figure.figsize": (5.6, 4.2),
         "figure.dpi": 72.0, "savefig.dpi": 72.0, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8.0,
         "axes.titlesize": 10.0, "axes.titley": 1.0, "path.simplify": True}
# Fixed margins (a layout engine would measure every label first: a third of the drawing time).
MARGINS = {"left": 0.12, "right": 0.97, "bottom": 0.12, "top": 0.92}
LONGEST_COLUMN = 24  # characters of a column name the importance figure shows
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def kinds(task: str) -> tuple[str, ...]:
    return KINDS.get(task, KINDS[CLASSIFICATION])


def figure_path(model: str, kind: str) -> str:
    """Where a figure is, relative to models/ (as the manifest's "files" and "figures" name it)."""
    return f"{model}/{FIGURES_FOLDER}/{kind}.svg"


def draw_all(models_dir: Path, version: str, metadata: dict[str, dict]) -> dict[str, dict[str, str]]:
    """Write each model's figures into ``models_dir/<model>/figures/`` from its evaluation.json;
    {model: {kind: path relative to models/}} for the manifest. A model without evaluation.json
    (trained before figures) has none. Says in one line what it drew and how long it took."""
    started, before = time.perf_counter(), _drawn["count"]
    listed = {}
    for model, meta in metadata.items():
        source = models_dir / model / EVALUATION_FILE
        if not source.is_file():
            continue
        numbers = json.loads(source.read_text(encoding="utf-8"))
        context = {"model": model, "version": version, "target": meta.get("data", {}).get("target"),
                   "units": meta.get("target_units")}
        (models_dir / model / FIGURES_FOLDER).mkdir(exist_ok=True)
        listed[model] = {}
        for kind in kinds(numbers.get("task", CLASSIFICATION)):
            (models_dir / figure_path(model, kind)).write_bytes(draw(kind, numbers, context))
            listed[model][kind] = figure_path(model, kind)
    if listed:
        count, drawn = sum(len(files) for files in listed.values()), _drawn["count"] - before
        print(f"figures: {count} SVG for {len(listed)} models ({drawn} drawn, {count - drawn} from the cache) "
              f"in {time.perf_counter() - started:.2f} s", flush=True)
    return listed


def draw(kind: str, numbers: dict, context: dict) -> bytes:
    """One figure's SVG bytes, from the cache when these numbers were drawn before (the versions a curve
    figure names drawn as stand-ins, see the module's docstring)."""
    if kind not in BASELINE_KINDS:  # only the curves show the baseline and the version
        numbers = {k: v for k, v in numbers.items() if k != "baseline"}
        context = {k: v for k, v in context.items() if k != "version"}
        return _drawn_or_kept(kind, numbers, context)
    shown = _stand_ins(numbers, context)
    if shown is not None:
        stand_in_numbers, stand_in_context, written = shown
        svg = _drawn_or_kept(kind, stand_in_numbers, stand_in_context)
        expected = _legend_counts(stand_in_numbers, stand_in_context, written)
        if all(svg.count(escape(stand_in).encode()) == count for stand_in, count in expected.items()):
            replace = {escape(stand_in).encode(): escape(version).encode() for stand_in, version in written.items()}
            found = re.compile(b"|".join(map(re.escape, sorted(replace, key=len, reverse=True))))
            return found.sub(lambda match: replace[match.group(0)], svg)  # in one pass: a version may hold the other stand-in
    return _drawn_or_kept(kind, numbers, context)  # a stand-in also shown elsewhere: drawn with the versions


def _stand_ins(numbers: dict, context: dict) -> tuple[dict, dict, dict[str, str]] | None:
    """``numbers`` and ``context`` with each version a legend names replaced by its stand-in (digits: 0 for
    this version, 9 for the baseline), and {stand-in: version}; None when the two stand-ins would be alike."""
    written = {_stand_in(context["version"], "0"): context["version"]}
    context = {**context, "version": next(iter(written))}
    baseline = numbers.get("baseline")
    if isinstance(baseline, dict) and isinstance(baseline.get("version"), str):
        stand_in = _stand_in(baseline["version"], "9")
        if stand_in in written:
            return None
        written[stand_in] = baseline["version"]
        numbers = {**numbers, "baseline": {**baseline, "version": stand_in}}
    return numbers, context, written


def _stand_in(version: str, digit: str) -> str:
    """
    >>> _stand_in("1.12.3+titanic.2024", "0")
    '0.00.0+titanic.0000'
    """
    return re.sub(r"[0-9]", digit, version)


def _legend_counts(numbers: dict, context: dict, written: dict[str, str]) -> dict[str, int]:
    """How often each stand-in is in the legend's names: where the drawn SVG must have it, and nowhere else."""
    names = [name for _, name, _, _ in _curves(numbers, context)]
    return {stand_in: sum(name.count(stand_in) for name in names) for stand_in in written}


def _drawn_or_kept(kind: str, numbers: dict, context: dict) -> bytes:
    key = cache.digest([kind, TITLES[kind], numbers, context, _libraries(), cache.sources_digest("pipeline/steps/figures.py")])
    kept = cache.recall(CACHE_KIND, key)
    if kept is not None and SVG in kept.files:
        return kept.read(SVG)
    svg = render(kind, numbers, context)
    _drawn["count"] += 1
    cache.keep(CACHE_KIND, key, {"kind": kind}, {SVG: svg})
    return svg


def render(kind: str, numbers: dict, context: dict) -> bytes:
    """Draw ``kind`` (one of KINDS) and return the SVG bytes."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        figure = Figure()
        axes = figure.subplots()
        figure.subplots_adjust(**MARGINS)
        _DRAWERS[kind](axes, numbers, context)
        axes.set_title(f"{context['model']}: {TITLES[kind]}")
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


@functools.cache
def _libraries() -> dict[str, str]:
    import importlib.metadata

    return {name: importlib.metadata.version(name) for name in ("matplotlib", "scikit-learn", "numpy")}


# One function per kind: (axes, evaluation numbers, context) -----------------------------------------------


def _confusion_matrix(axes, numbers: dict, context: dict) -> None:
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    ConfusionMatrixDisplay(np.array(numbers["confusion_matrix"]), display_labels=numbers["classes"]).plot(
        ax=axes, colorbar=False, values_format="d", cmap="Blues")
    axes.grid(False)
    axes.set_xlabel(f"predicted label ({numbers['rows']} held-out rows)")
    axes.set_ylabel("true label")


def _curves(numbers: dict, context: dict) -> list[tuple[int, str, dict, bool]]:
    """(colour index, legend name, curves, is the baseline) of each class shown, the new version's first."""
    baseline = numbers.get("baseline") or {}
    binary = len(numbers.get("classes", [])) == 2
    lines = []
    for index, (label, curves) in enumerate(numbers["curves"].items()):
        lines.append((index, context["version"] if binary else f"{label} ({context['version']})", curves, False))
        old = (baseline.get("curves") or {}).get(label)
        if old:
            shown = f"{baseline['version']}, on {baseline['rows']} rows"
            lines.append((index, shown if binary else f"{label} ({shown})", old, True))
    return lines


def _style(index: int, baseline: bool) -> dict:
    return {"color": COLOURS[index % len(COLOURS)], "linestyle": "--" if baseline else "-",
            "linewidth": 1.2 if baseline else 1.8}


def _unit_axes(axes) -> None:
    """Quarters on both axes of a curve drawn in the unit square (fewer ticks than matplotlib picks: each costs)."""
    from matplotlib.ticker import FixedLocator

    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1]))


def _positive(numbers: dict) -> str | None:
    """The positive class of a binary task (what the axes say the curve is of)."""
    classes = numbers.get("classes", [])
    return classes[-1] if len(classes) == 2 else None


def _positive_label(numbers: dict, word: str = "label") -> str:
    """What scikit-learn's curve displays add to an axis label: the positive class, when there is one."""
    positive = _positive(numbers)
    return f" (Positive {word}: {positive})" if positive is not None else ""


# The three curve kinds are drawn as scikit-learn's RocCurveDisplay, PrecisionRecallDisplay and
# CalibrationDisplay draw them, with matplotlib alone: they are what a release of unchanged models draws
# again (the baseline's curves moved), in a process that has not imported scikit-learn, whose import
# is most of that release's drawing time. tests/unit/test_figures.py holds the bytes equal to the displays'.
def _roc(axes, numbers: dict, context: dict) -> None:
    for position, (index, name, curves, baseline) in enumerate(_curves(numbers, context)):
        roc = curves["roc"]
        axes.plot(roc["fpr"], roc["tpr"], label=f"{name} (AUC = {roc['auc']:0.2f})", **_style(index, baseline))
        if position == 0:
            axes.plot((0, 1), (0, 1), label="Chance level (AUC = 0.5)", color="k", linestyle="--")
    shown = _positive_label(numbers)
    axes.set(xlabel="False Positive Rate" + shown, xlim=(-0.01, 1.01), ylabel="True Positive Rate" + shown,
             ylim=(-0.01, 1.01), aspect="equal")
    _unit_axes(axes)
    axes.legend(loc="lower right")


def _precision_recall(axes, numbers: dict, context: dict) -> None:
    for index, name, curves, baseline in _curves(numbers, context):
        pr = curves["precision_recall"]
        axes.plot(pr["recall"], pr["precision"], label=f"{name} (AP = {pr['average_precision']:0.2f})",
                  drawstyle="steps-post", **_style(index, baseline))
    shown = _positive_label(numbers)
    axes.set(xlabel="Recall" + shown, xlim=(-0.01, 1.01), ylabel="Precision" + shown, ylim=(-0.01, 1.01),
             aspect="equal")
    _unit_axes(axes)
    axes.legend(loc="lower left")


def _calibration(axes, numbers: dict, context: dict) -> None:
    axes.plot([0, 1], [0, 1], "k:", label="Perfectly calibrated")
    for index, name, curves, baseline in _curves(numbers, context):
        calibration = curves["calibration"]
        axes.plot(calibration["prob_pred"], calibration["prob_true"], label=name, **_style(index, baseline),
                  marker="o" if baseline else "s", markersize=3)
    shown = _positive_label(numbers, "class").lstrip()
    axes.set(xlabel=f"Mean predicted probability {shown}", ylabel=f"Fraction of positives {shown}")
    _unit_axes(axes)
    axes.legend(loc="upper left")


def _permutation_importance(axes, numbers: dict, context: dict) -> None:
    importance = numbers["permutation_importance"]
    columns = sorted(importance["columns"].items(), key=lambda item: (item[1]["mean"], item[0]))
    names = [name if len(name) <= LONGEST_COLUMN else name[:LONGEST_COLUMN - 1] + "…" for name, _ in columns]
    # room for the longest name at the left (a character at this size is about 0.0125 of the width)
    axes.figure.subplots_adjust(left=min(0.4, 0.06 + 0.0125 * max(map(len, names), default=1)))
    axes.barh(range(len(names)), [v["mean"] for _, v in columns], xerr=[v["std"] for _, v in columns],
              tick_label=names, color=COLOURS[0], alpha=0.85, error_kw={"elinewidth": 1, "capsize": 2})
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel(f"drop in {importance['scoring']} when shuffled (mean ± sd, {importance['repeats']} repeats)")
    axes.grid(axis="y", visible=False)


def _prediction_error(kind: str):
    def draw(axes, numbers: dict, context: dict) -> None:
        import numpy as np
        from sklearn.metrics import PredictionErrorDisplay

        predictions = numbers["predictions"]
        PredictionErrorDisplay(y_true=np.array(predictions["actual"]), y_pred=np.array(predictions["predicted"])).plot(
            ax=axes, kind=kind, scatter_kwargs={"s": 10, "alpha": 0.6, "color": COLOURS[0]})
        units = f" ({context['units']})" if context.get("units") else ""
        shown = len(predictions["actual"])
        rows = f"{shown} of {predictions['of_rows']}" if shown < predictions["of_rows"] else f"{shown}"
        axes.set_xlabel(f"{axes.get_xlabel()}{units}; {rows} held-out rows")
        axes.set_ylabel(f"{axes.get_ylabel()}{units}")
    return draw


_DRAWERS = {"confusion_matrix": _confusion_matrix, "roc": _roc, "precision_recall": _precision_recall,
            "calibration": _calibration, "permutation_importance": _permutation_importance,
            "predicted_vs_actual": _prediction_error("actual_vs_predicted"),
            "residuals": _prediction_error("residual_vs_predicted")}
