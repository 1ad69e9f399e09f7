"""Two versions side by side: ``/registry/<project>/compare/<A>/<B>/``, as HTML text.

What a reviewer deciding between two versions reads: each model's held-out metrics and
their change, the per-class metrics, the contract diff ``make diff`` prints (with the bump
it requires), the data each version pins, and each model's figures next to each other.
A pure function of the two releases, every value from a wheel escaped (index/registry/views.py).
"""

from __future__ import annotations

import typing as t

from index.registry import figures
from index.registry.releases import Release
from index.registry.views import (
    METRICS, _METRIC_NAMES, _data_package_facts, _metric, _page, _status, _task_text, e, figure_html, baseline_note,
    package_href, per_class, version_href,
)

PER_CLASS_METRICS = (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))


def compare_html(project: str, a: Release, b: Release, changes: list[tuple[str, str]] | str, bump: str | None,
                 root: str) -> str:
    """``changes``: the contract diff from ``a`` to ``b`` as (group, text), or why there is none; ``bump``: the
    part of X.Y.Z it requires; ``root``: the relative path from this page back to the index root."""
    links = " · ".join(f'<a href="{e(root + version_href(project, r.version))}">{e(r.version)}</a>' for r in (a, b))
    sections = [
        f'<p><a href="{e(root + package_href(project))}">← all versions of {e(project)}</a> · {links}</p>',
        f"<header><h1>{e(project)} {e(a.version)} → {e(b.version)}</h1></header>",
        f'<p class="muted">{e(a.version)}: {_status(a)} · {e(b.version)}: {_status(b)}</p>',
        _metrics_html(a, b),
        _per_class_html(a, b),
        _changes_html(changes, bump, a.version, b.version),
        _data_html(a, b, root),
        _figures_html(project, a, b, root),
    ]
    return _page(f"{project} {a.version} → {b.version} · registry", "\n".join(s for s in sections if s))


def _change(before: t.Any, after: t.Any) -> str:
    if _is_number(before) and _is_number(after):
        return "=" if before == after else f"{after - before:+.4f}"
    return "(new)" if before is None else "(gone)" if after is None else "-"


def _is_number(value: t.Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric_keys(releases: tuple[Release, ...], model: str) -> list[str]:
    """The metrics either version recorded for ``model``, those the pages name first."""
    recorded = {key for r in releases for key in (r.facts.models.get(model, {}).get("metrics") or {})
                if isinstance(key, str)}
    named = [key for task in METRICS for key, _ in METRICS[task] if key in recorded]
    return list(dict.fromkeys(named)) + sorted(recorded - set(named))


def _metrics_html(a: Release, b: Release) -> str:
    rows = []
    for model in sorted(set(a.facts.models) | set(b.facts.models)):
        for key in _metric_keys((a, b), model):
            before, after = a.metric(model, key), b.metric(model, key)
            rows.append(f'<tr data-model="{e(model)}" data-metric="{e(key)}"><td>{e(model)}</td>'
                        f"<td>{e(_METRIC_NAMES.get(key, key))}</td><td class=\"num\">{_metric(before)}</td>"
                        f'<td class="num">{_metric(after)}</td><td class="num">{_change(before, after)}</td></tr>')
    if not rows:
        return ""
    return ('<h2>Metrics (held-out split)</h2>\n<div class="scroll"><table id="compare-metrics"><thead><tr>'
            f"<th>model</th><th>metric</th><th>{e(a.version)}</th><th>{e(b.version)}</th><th>change</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _per_class_html(a: Release, b: Release) -> str:
    """Each class's precision, recall and F1 of each model, ``a → b (change)``, and its support in both (the
    classes each version recorded under ``per_class``, at most views.PER_CLASS_ROWS of each)."""
    rows = []
    for model in sorted(set(a.facts.models) | set(b.facts.models)):
        (before, _), (after, _) = (per_class(release.facts.models.get(model, {})) for release in (a, b))
        for label in sorted(set(before) | set(after)):
            old, new = before.get(label) or {}, after.get(label) or {}
            cells = "".join(f'<td class="num">{_metric(old.get(key))} → {_metric(new.get(key))} '
                            f'<span class="muted">({_change(old.get(key), new.get(key))})</span></td>'
                            for key, _ in PER_CLASS_METRICS)
            rows.append(f'<tr data-model="{e(model)}" data-class="{e(label)}"><td>{e(model)}</td><td>{e(label)}</td>'
                        f'{cells}<td class="num">{e(old.get("support"))} → {e(new.get("support"))}</td></tr>')
    if not rows:
        return ""
    head = "".join(f"<th>{name}</th>" for _, name in PER_CLASS_METRICS)
    return (f'<h2>Per-class metrics ({e(a.version)} → {e(b.version)})</h2>\n<div class="scroll">'
            f'<table id="compare-classes"><thead><tr><th>model</th><th>class</th>{head}<th>support</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _changes_html(changes: list[tuple[str, str]] | str, bump: str | None, a: str, b: str) -> str:
    if isinstance(changes, str):
        return f'<h2>Contract</h2>\n<p class="muted">{e(changes)}.</p>'
    required = (f"<p>Required bump from {e(a)} to {e(b)}: <strong>{e(bump)}</strong>.</p>" if bump
                else '<p class="muted">No bump required (only metrics changed, or nothing).</p>')
    if not changes:
        return f'<h2>Contract</h2>\n{required}<p class="muted">Nothing changed.</p>'
    items = "".join(f'<li><span class="group">{e(group)}</span>: {e(text)}</li>' for group, text in changes)
    return f'<h2>Contract</h2>\n{required}<ul class="changes" id="compare-changes">{items}</ul>'


def _data_facts(release: Release, root: str) -> dict[str, str]:
    """What a version's models were trained on, as its first model's metadata says (a build has one dataset)."""
    models = release.facts.models
    first = models[sorted(models)[0]] if models else {}
    data = first.get("data") if isinstance(first.get("data"), dict) else {}
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    facts = {"data tag": e(release.data_tag), "task": _task_text(first) if first else "-",
             "source": e(data.get("source")), "sha256": f'<span class="mono">{e(data.get("sha256"))}</span>',
             "rows": e(data.get("rows")), "target": e(data.get("target")),
             "split": ", ".join(f"{e(k)} {e(v)}" for k, v in sorted(split.items())) or "-"}
    facts.update(_data_package_facts(data.get("package"), root))
    return facts


def _data_html(a: Release, b: Release, root: str) -> str:
    before, after = _data_facts(a, root), _data_facts(b, root)
    rows = "".join(f'<tr{" class=differs" if before.get(name) != after.get(name) else ""}><td>{e(name)}</td>'
                   f'<td>{before.get(name, "-")}</td><td>{after.get(name, "-")}</td></tr>'
                   for name in dict.fromkeys([*before, *after]))
    return ('<h2>Data</h2>\n<div class="scroll"><table id="compare-data"><thead><tr><th></th>'
            f"<th>{e(a.version)}</th><th>{e(b.version)}</th></tr></thead><tbody>{rows}</tbody></table></div>")


def _figures_html(project: str, a: Release, b: Release, root: str) -> str:
    shown = {release.version: figures.listed(release) for release in (a, b)}
    models = sorted(set(shown[a.version]) | set(shown[b.version]))
    if not models:
        return ""
    blocks = []
    for model in models:
        kinds = sorted({kind for listed in shown.values() for kind in listed.get(model, [])},
                       key=lambda kind: (figures.ORDER.get(kind, len(figures.ORDER)), kind))
        pairs = []
        for kind in kinds:
            cells = []
            for release in (a, b):
                if kind in shown[release.version].get(model, []):
                    src = root + version_href(project, release.version) + figures.href(model, kind)
                    cells.append(figure_html(src, model, kind).replace(
                        "<figcaption>", f"<figcaption>{e(release.version)}: ", 1))
                else:
                    cells.append(f'<div class="none">{e(release.version)} has no {e(figures.title(kind))} '
                                 f"of {e(model)}.</div>")
            pairs.append(f'<div class="pair">{"".join(cells)}</div>')
        blocks.append(f"<h3>{e(model)}</h3>\n" + "".join(pairs))
    notes = "".join(baseline_note(release) for release in (a, b))
    return (f'<h2>Figures: {e(a.version)} (left) and {e(b.version)} (right)</h2>\n<div id="compare-figures">'
            + notes + "\n".join(blocks) + "</div>")
