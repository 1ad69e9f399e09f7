"""Each model's held-out metric across versions, as inline SVG (no script, no font file).

The page is read on machines without internet: the chart is drawn on the server,
in the page, with the page's own fonts; a point's ``<title>`` is the browser's
tooltip, so exact values need no JavaScript either.
"""

from __future__ import annotations

import html
import math

COLOURS = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626")
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 14, 58
MAX_LABELS = 12  # x-axis labels shown; every point keeps its tooltip


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def metric_svg(versions: list[str], series: dict[str, list[float | None]], metric: str = "accuracy",
               yanked: frozenset[int] = frozenset()) -> str:
    """``series``: model name -> the metric per version (oldest first, None where absent); ``yanked``: the
    positions of yanked versions, drawn as hollow points whose tooltip and axis label say so.

    >>> svg = metric_svg(["1.0.0", "1.0.1"], {"M": [0.8, 0.85]})
    >>> svg.startswith("<svg") and svg.count("<circle") == 2 and "0.8500" in svg
    True
    >>> svg = metric_svg(["1.0.0", "1.0.1"], {"M": [0.8, 0.85]}, yanked=frozenset({0}))
    >>> svg.count('class="yanked"'), "M 1.0.0 (yanked): 0.8000" in svg, "1.0.0 (yanked)</text>" in svg
    (1, True, True)
    """
    values = [v for points in series.values() for v in points if v is not None]
    if not values:
        return ""
    low, high = _bounds(min(values), max(values))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w / 2 if len(versions) == 1 else plot_w * i / (len(versions) - 1))

    def y(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="held-out {html.escape(metric)} of each model across versions" xmlns="http://www.w3.org/2000/svg">']
    for tick in _ticks(low, high):
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.3f}</text>')
    step = max(1, math.ceil(len(versions) / MAX_LABELS))
    for i, version in enumerate(versions):
        if i % step == 0 or i == len(versions) - 1 or i in yanked:
            parts.append(f'<text class="tick" transform="translate({x(i):.1f},{HEIGHT - BOTTOM + 12}) rotate(35)">'
                         f'{html.escape(version)}{" (yanked)" if i in yanked else ""}</text>')
    for index, (model, points) in enumerate(series.items()):
        stroke = colour(index)
        line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(points) if v is not None)
        parts.append(f'<polyline fill="none" stroke="{stroke}" stroke-width="2" points="{line}"/>')
        for i, value in enumerate(points):
            if value is not None:
                mark = (f' class="yanked" fill="#fff" stroke="{stroke}" stroke-width="2"' if i in yanked
                        else f' fill="{stroke}"')
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3.5"{mark}>'
                             f'<title>{html.escape(model)} {html.escape(versions[i])}'
                             f'{" (yanked)" if i in yanked else ""}: {value:.4f}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _bounds(low: float, high: float) -> tuple[float, float]:
    """A range around the values with some room, never empty.

    >>> _bounds(0.8, 0.8)
    (0.79, 0.81)
    """
    pad = max((high - low) * 0.15, 0.01)
    return round(low - pad, 4), round(high + pad, 4)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]
