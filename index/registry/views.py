"""The registry pages as HTML text: pure functions of the releases, every package value escaped.

No script and nothing from outside the page: styles inline, the system's fonts, the
chart as inline SVG, a version's evaluation figures as ``<img>`` from this index only
(index/registry/figures.py). The model card is Markdown rendered with raw HTML disabled,
so a ``<script>`` in a card shows as text, and its only images are its version's figures.
"""

from __future__ import annotations

import html
import re
import typing as t
from datetime import datetime, timezone
from urllib.parse import quote

from markdown_it import MarkdownIt

from index.registry import chart, figures
from index.registry.releases import ModelPackage, Release
from index import owned_package

contract = owned_package.module("contract")
SHOWN_METRICS = contract.SHOWN_METRICS

# Raw HTML off: a card's tags are text. Links keep markdown-it's own scheme check (no javascript:).
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def _card_image(self, tokens, idx, options, env) -> str:
    """A card's image shows when it is one of its version's figures (the path the build writes, relative to the
    page); any other is its alt text, so a card loads nothing from elsewhere."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env)
    source = token.attrGet("src") or ""
    shown = env.get("figures", set()) if isinstance(env, dict) else set()
    if source in shown:
        return f'<img src="{e(source)}" alt="{e(alt)}" class="figure">'
    return f'<span class="muted">[image: {e(alt)}]</span>'


_MARKDOWN.add_render_rule("image", _card_image)
# Each task's metrics as the package shows them (python -m mymodel info, the model card), plus the
# cross-validation spread: a version's Metrics table has the columns of its models' tasks.
METRICS = {task: (*shown, (f"cv_{shown[0][0]}_std", f"CV {shown[0][1]} σ")) for task, shown in SHOWN_METRICS.items()}
_METRIC_NAMES = {key: name for shown in METRICS.values() for key, name in shown}
# The two a version's row on the index page shows for each model, by its task.
ROW_METRICS = {"classification": ("accuracy", "roc_auc"), "regression": ("r2", "rmse")}
PER_CLASS_ROWS = 100  # classes a version page lists per model
# A yank reason, a promotion note or any other free text a writer sent, as the page shows it: the full
# text stays in make audit (and a yank's on the simple page, which pip shows).
SHOWN_TEXT = 300
# Defence in depth for a value that escaped the escaping: the browser runs no script, loads nothing.
# Images: the chart's data: URIs and this index's own figures (served with their own policy, figures.FIGURE_POLICY).
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
                           "form-action 'none'")

_STYLE = """
:root { color-scheme: light; --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --soft: #f9fafb;
  --accent: #2563eb; --warn: #b45309; --warn-bg: #fef3c7; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 48px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 16px; margin-bottom: 8px; }
h1 { font-size: 1.6rem; margin: 0; } h2 { font-size: 1.15rem; margin: 32px 0 10px; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.muted { color: var(--muted); }
nav.docs { float: right; font-size: 0.9em; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 0.86em; }
.copy { user-select: all; background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 2px 6px; overflow-wrap: anywhere; }
td .copy { white-space: nowrap; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow-x: auto; }
pre.copy { white-space: pre; user-select: all; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; font-size: 0.85em; white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; } td.why { min-width: 16em; }
.badge { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 0.8em; font-weight: 600; white-space: nowrap; }
.ok { background: #dcfce7; color: #166534; } .yanked { background: var(--warn-bg); color: var(--warn); }
tr.is-yanked td { background: #fffbeb; }
.chart { width: 100%; height: auto; max-height: 320px; display: block; }
.chart .grid { stroke: var(--line); } .chart .tick { font-size: 11px; fill: var(--muted); font-family: inherit; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 0.85em; margin: 4px 0 0; padding: 0; list-style: none; }
.legend i { display: inline-block; width: 12px; height: 3px; margin-right: 6px; vertical-align: middle; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 4px 18px; overflow-x: auto; }
.card table { width: auto; }
ul.changes { padding-left: 20px; } .group { font-weight: 600; text-transform: capitalize; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; margin: 0 0 8px; }
.figures figure, .pair figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px; background: #fff; }
img.figure { display: block; width: 100%; height: auto; }
.card img.figure { display: inline-block; width: 32%; min-width: 240px; }
figcaption { font-size: 0.85em; color: var(--muted); margin-top: 2px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin: 0 0 12px; }
.pair .none { border: 1px dashed var(--line); border-radius: 6px; padding: 16px; color: var(--muted); }
.choices { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 0.85em; margin: -4px 0 8px; }
.choices .chosen { font-weight: 600; color: var(--ink); }
tr.differs td { background: #fffbeb; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
@media (max-width: 640px) { main { padding: 16px 12px 32px; } body { font-size: 14px; } dl.facts { grid-template-columns: 1fr; } }
"""


def e(value: t.Any) -> str:
    """Escaped text of any value from a package (None shows as '-')."""
    return "-" if value is None or value == "" else html.escape(str(value))


def _page(title: str, body: str, root: str = "") -> str:
    """A whole page; ``root``: the relative path back to the index root, for the link to the documentation."""
    docs = f'<nav class="docs"><a href="{html.escape(root)}docs/" id="docs-link">Documentation</a></nav>\n'
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<link rel="icon" href="data:,">\n'  # no favicon: a browser would ask for /favicon.ico, a 404
            f"<title>{e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n{docs}{body}\n</main>\n"
            "</body>\n</html>\n")


def _date(timestamp: float) -> str:
    """
    >>> _date(0)
    '1970-01-01 00:00 UTC'
    """
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _size(size: int) -> str:
    """
    >>> _size(2_345_678), _size(900)
    ('2.2 MiB', '900 B')
    """
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _metric(value: t.Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else e(value)


def install_line(simple_url: str, project: str, version: str) -> str:
    return f"pip install --index-url {simple_url} {project}=={version}"


def lock_lines(project: str, release: Release) -> str:
    """The hash-locked requirement, as ``make lock`` prints it (both files, sorted by name)."""
    hashes = sorted((f.filename, f.sha256) for f in (release.wheel, release.sdist) if f.sha256)
    return " \\\n".join([f"{project}=={release.version}"] + [f"    --hash=sha256:{digest}" for _, digest in hashes])


def version_href(project: str, version: str) -> str:
    return f"{package_href(project)}{quote(version, safe='')}/"


def package_href(project: str) -> str:
    """A package's page, relative to the index root."""
    return f"registry/{quote(project, safe='')}/"


def _status(release: Release) -> str:
    marks = []
    if release.yanked is not None:
        reason = f' <span class="muted">{e(shortened(release.yanked))}</span>' if release.yanked else ""
        marks.append(f'<span class="badge yanked">yanked</span>{reason}')
    if release.facts.problem:
        marks.append(f'<span class="badge yanked">unreadable</span> <span class="muted">{e(release.facts.problem)}</span>')
    return "<br>".join(marks) or '<span class="badge ok">available</span>'


def _onnx_models(release: Release) -> list[str]:
    return sorted(name for name, meta in release.facts.models.items()
                  if isinstance(meta, dict) and isinstance(meta.get("onnx"), dict) and meta["onnx"].get("status") == "converted")


def _models(releases: list[Release]) -> list[str]:
    return sorted({name for release in releases for name in release.facts.models})


def _row_heading(releases: list[Release], model: str) -> str:
    """e.g. ``accuracy / ROC AUC``; a name used by both tasks across versions shows both pairs."""
    tasks = sorted({r.task(model) for r in releases if model in r.facts.models})
    return " or ".join(" / ".join(_METRIC_NAMES[k] for k in ROW_METRICS[task]) for task in tasks)


def _row_scores(release: Release, model: str) -> str:
    if model not in release.facts.models:
        return "- / -"
    return " / ".join(_metric(release.metric(model, key)) for key in ROW_METRICS[release.task(model)])


MAX_CHOICES = 40  # metrics offered to chart: a wheel could record any number
_METRIC_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")


def recorded_metrics(releases: list[Release]) -> list[str]:
    """The metrics the versions' models recorded, those the pages name first, as the chart can plot them."""
    keys = {key for release in releases for meta in release.facts.models.values()
            if isinstance(meta, dict) and isinstance(meta.get("metrics"), dict)
            for key in meta["metrics"] if _METRIC_KEY.fullmatch(key)}
    order = list(_METRIC_NAMES)
    return sorted(keys, key=lambda key: (order.index(key) if key in order else len(order), key))[:MAX_CHOICES]


def _charts(releases: list[Release], metric: str | None = None) -> str:
    """The chart of ``metric`` (one of recorded_metrics) for every model across versions, oldest first, yanked
    versions marked; without one, a chart per metric the release gate compared (accuracy, R², RMSE...): an index
    with a classification and a regression has two. Above them, links that chart any other recorded metric."""
    gated: dict[str, list[Release]] = {}
    if metric:
        gated[metric] = [r for r in releases if any(r.metric(m, metric) is not None for m in r.facts.models)]
    else:
        for release in releases:  # newest first: the newest version's chart comes first
            gated.setdefault(release.gate[0], []).append(release)
    charts = []
    for shown, group in gated.items():
        oldest_first = list(reversed(group))
        models = _models(group)
        yanked = frozenset(i for i, r in enumerate(oldest_first) if r.yanked is not None)
        svg = chart.metric_svg([r.version for r in oldest_first],
                               {m: [r.metric(m, shown) for r in oldest_first] for m in models}, shown, yanked)
        if not svg:
            continue
        lower = " (lower is better)" if group[0].gate == (shown, True) else ""
        legend = "".join(f'<li><i style="background:{chart.colour(i)}"></i>{e(m)}</li>' for i, m in enumerate(models))
        if yanked:
            legend += '<li><i style="background:#fff;border:2px solid var(--muted);height:8px;width:8px;border-radius:50%">' \
                      '</i>yanked</li>'
        charts.append(f'<h2>Held-out {e(_METRIC_NAMES.get(shown, shown))} across versions{lower}</h2>\n'
                      f'<figure style="margin:0" data-metric="{e(shown)}">{svg}<ul class="legend">{legend}</ul></figure>\n')
    return _metric_choices(releases, metric) + "".join(charts)


def _metric_choices(releases: list[Release], chosen: str | None) -> str:
    choices = recorded_metrics(releases)
    if len(choices) < 2:
        return ""
    links = [f'<a href="." class="{"" if chosen else "chosen"}">gated</a>']
    links += [f'<a href="?metric={quote(key)}" class="{"chosen" if key == chosen else ""}" data-metric="{e(key)}">'
              f'{e(_METRIC_NAMES.get(key, key))}</a>' for key in choices]
    return f'<nav class="choices" id="chart-metrics"><span class="muted">Chart:</span>{"".join(links)}</nav>\n'


def empty_html(project: str, simple_url: str, root: str = "") -> str:
    body = (f"<header><h1>{e(project)}</h1><span class=\"muted\">model registry</span></header>\n"
            f"<p>No version of {e(project)} is published on this index yet.</p>\n"
            "<p>Publish the first one from a clone of the repository:</p>\n"
            "<pre class=\"copy\">make release</pre>\n"
            f"<p class=\"muted\">It trains the models, builds the package and uploads it here; this page then lists it, "
            f"and <code>{e(install_line(simple_url, project, '<version>'))}</code> installs it.</p>")
    return _page(f"{project} · registry", body, root)


def registry_html(project: str, releases: list[Release], simple_url: str, root: str = "", channels: str = "",
                  metric: str | None = None, audit: str = "") -> str:
    """A package's page: chart, channels, then every version newest first. ``root``: the relative path
    from the page back to the index root ("" at ``/``); ``channels``: what goes where the channels are;
    ``metric``: the one to chart (one of recorded_metrics), else those the release gate compared; ``audit``:
    what goes after the versions (the recent audit entries)."""
    if not releases:
        return empty_html(project, simple_url, root)
    models = _models(releases)
    newest = next((r for r in releases if r.yanked is None), releases[0])
    head = "".join(f'<th>{e(m)}<br><span class="muted">{_row_heading(releases, m)}</span></th>' for m in models)
    rows = []
    for release in releases:
        bump = release.facts.bump
        kind = bump.get("kind") or bump.get("part")
        reasons = bump.get("reasons") if isinstance(bump.get("reasons"), list) else []
        scores = "".join(f'<td class="num">{_row_scores(release, m)}</td>' for m in models)
        rows.append(
            f'<tr class="{"is-yanked" if release.yanked is not None else ""}" data-version="{e(release.version)}">'
            f'<td class="nowrap"><a href="{e(root + version_href(project, release.version))}">{e(release.version)}</a></td>'
            f"<td>{e(release.data_tag)}</td><td class=\"nowrap\">{_date(release.date)}</td>"
            f"<td>{e(kind)}</td><td class=\"why\">{'; '.join(e(r) for r in reasons) or '-'}</td>"
            f'<td class="num">{_size(release.wheel.size)}</td>{scores}<td>{_status(release)}</td>'
            f'<td><code class="copy">{e(install_line(simple_url, project, release.version))}</code></td></tr>')
    body = (f'<header><h1>{e(project)}</h1><span class="muted">model registry · {len(releases)} '
            f'version{"s" if len(releases) != 1 else ""} on this index</span></header>\n'
            + (f'<p id="summary">{e(newest.facts.summary)}</p>\n' if newest.facts.summary else "")
            + f'<p>Newest: <code class="copy">{e(install_line(simple_url, project, newest.version))}</code></p>\n'
            + _charts(releases, metric) + channels
            + '<h2>Versions</h2>\n<div class="scroll"><table id="versions">\n<thead><tr><th>version</th><th>data</th>'
            f"<th>date</th><th>bump</th><th>why</th><th>wheel</th>{head}<th>status</th><th>install</th></tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>\n" + audit)
    return _page(f"{project} · registry", body, root)


def shortened(text: str, limit: int = SHOWN_TEXT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was longer (cut before escaping, so no
    entity is split).

    >>> shortened("a" * 5, 3), shortened("abc", 3)
    ('aaa…', 'abc')
    """
    return text if len(text) <= limit else text[:limit] + "…"


def _audit_detail(detail: dict) -> str:
    shown = {key: value for key, value in sorted(detail.items()) if value not in (None, "")}
    return "; ".join(f"{key} {shortened(str(value), 12 if key == 'sha256' else SHOWN_TEXT)}"
                     for key, value in shown.items())


def audit_html(entries: list | str) -> str:
    """The package's newest writes from the audit log (index.audit.Entry, oldest first), newest first, or
    why they cannot be read."""
    if isinstance(entries, str):
        return f'<h2>Recent changes</h2>\n<p class="muted">The audit log cannot be shown: {e(entries)}</p>\n'
    if not entries:
        return ""
    rows = "".join(f'<tr data-seq="{entry.seq}"><td class="num">{entry.seq}</td><td class="nowrap">{e(entry.at)}</td>'
                   f"<td>{e(entry.who)}</td><td>{e(entry.action)}</td><td>{e(entry.project)}</td>"
                   f'<td class="nowrap">{e(entry.version)}</td><td>{e(_audit_detail(entry.detail))}</td></tr>'
                   for entry in reversed(entries))
    return ('<h2>Recent changes</h2>\n<p class="muted">From the index\'s audit log (<code>make audit PACKAGE=...'
            '</code> shows every entry and checks the hash chain).</p>\n<div class="scroll"><table id="audit"><thead>'
            "<tr><th>#</th><th>when</th><th>by (credential)</th><th>action</th><th>project</th><th>version</th>"
            f"<th>details</th></tr></thead>\n<tbody>{rows}</tbody></table></div>\n")


def channel_url(simple_url: str, channel: str) -> str:
    """
    >>> channel_url("http://127.0.0.1:8080/simple/", "prod")
    'http://127.0.0.1:8080/channels/prod/simple/'
    """
    return f"{simple_url.removesuffix('simple/')}channels/{quote(channel, safe='')}/simple/"


def channels_html(histories: dict[str, list] | str, simple_url: str, project: str,
                  totals: dict[str, int] | None = None) -> str:
    """Each channel: the version it serves, how to follow it, and its newest promotions newest first
    (``histories``: channel -> index.channels.Promotion list, oldest first, or why they cannot be read;
    ``totals``: how many each channel has, for the line that says how to see the older ones)."""
    if isinstance(histories, str):
        return f'<h2>Channels</h2>\n<p class="muted">The channels cannot be shown: {e(histories)}</p>\n'
    if not histories:
        return ""
    sections = []
    for channel, promotions in histories.items():
        if not promotions:
            continue
        rows = "".join(f'<tr data-channel="{e(channel)}" data-number="{p.number}"><td class="num">{p.number}</td>'
                       f'<td class="nowrap">{e(p.version)}</td><td class="nowrap">{e(p.when)}</td>'
                       f"<td>{e(p.user)}</td><td><code>{e(p.commit)}</code></td><td>{e(p.note)}</td></tr>"
                       for p in reversed(promotions))
        older = (totals or {}).get(channel, len(promotions)) - len(promotions)
        more = (f'<p class="muted">{older:,} older promotions: <code>make channels CHANNEL={e(channel)} PAGE=2</code>, '
                f'or <a href="{e(simple_url.removesuffix("simple/"))}channels/?channel={e(channel)}&amp;page=2">'
                f"the next page as JSON</a></p>\n" if older > 0 else "")
        sections.append(
            f'<h3>{e(channel)}: {e(promotions[-1].version)}</h3>\n'
            f'<p><code class="copy">pip install --index-url {e(channel_url(simple_url, channel))} '
            f'{e(project)}</code></p>\n'
            f'<div class="scroll"><table class="channel"><thead><tr><th>#</th><th>version</th><th>promoted</th>'
            f"<th>by (credential)</th><th>built from</th><th>note</th></tr></thead>\n<tbody>{rows}</tbody></table></div>\n"
            + more)
    return "<h2>Channels</h2>\n" + "".join(sections) if sections else ""


def _package_status(package: ModelPackage) -> str:
    if all(r.yanked is not None for r in package.releases):
        return '<span class="badge yanked">every version yanked</span>'
    marks = []
    if package.releases[0].yanked is not None:
        marks.append(f'<span class="badge yanked">newest yanked</span> <span class="muted">{e(package.releases[0].version)}</span>')
    if package.newest.facts.problem:
        marks.append('<span class="badge yanked">unreadable</span>')
    return "<br>".join(marks) or '<span class="badge ok">available</span>'


def _headline(package: ModelPackage) -> str:
    headline = package.headline()
    if headline is None:
        return "-"
    metric, value, model = headline
    return f'{e(_METRIC_NAMES.get(metric, metric))} {_metric(value)} <span class="muted">{e(model)}</span>'


def packages_html(packages: list[ModelPackage], simple_url: str) -> str:
    """``/`` on an index with several model packages: one row each, linking to its page."""
    rows = []
    for package in packages:
        newest = package.newest
        rows.append(
            f'<tr data-package="{e(package.project)}"><td class="nowrap"><a href="{e(package_href(package.project))}">'
            f'{e(package.project)}</a></td><td class="nowrap">{e(newest.version)}</td><td>{e(newest.data_tag)}</td>'
            f'<td class="num">{_headline(package)}</td><td>{_package_status(package)}</td>'
            f'<td><code class="copy">{e(install_line(simple_url, package.project, newest.version))}</code></td></tr>')
    body = (f'<header><h1>Model registry</h1><span class="muted">{len(packages)} model packages on this index'
            '</span></header>\n<div class="scroll"><table id="packages">\n<thead><tr><th>package</th><th>newest</th>'
            '<th>data</th><th>headline metric (best model)</th><th>status</th><th>install</th></tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table></div>")
    return _page("model registry", body)


def version_html(project: str, release: Release, changes: list[tuple[str, str]] | str | None, previous: str | None,
                 simple_url: str, root: str) -> str:
    """One version: install lines, metrics, diff to the previous version, schema, lineage, files, card.

    ``changes``: (group, text) from the contract diff; why there is none (text); None for the first version. ``root``:
    the relative path from this page back to the index root."""
    facts = release.facts
    models = sorted(facts.models)
    tasks = {release.task(name) for name in models}
    metric_names = [key for task in sorted(tasks) for key, _ in METRICS[task]
                    if any(release.metric(name, key) is not None for name in models)]
    metric_names += release.team_metrics()  # [evaluation] metrics: the team's own
    metric_rows = "".join(
        f"<tr><td>{e(name)}</td><td class=\"mono\">{e(facts.models[name].get('estimator'))}</td>"
        + "".join(f'<td class="num">{_metric(release.metric(name, m))}</td>' for m in metric_names)
        + "</tr>" for name in models)
    onnx = _onnx_models(release)
    first = facts.models[models[0]] if models else {}
    sections = [
        f'<p><a href="{e(root + package_href(project))}">← all versions of {e(project)}</a></p>',
        f'<header><h1>{e(project)} {e(release.version)}</h1>{_status(release)}</header>',
        f'<p class="muted">{e(facts.summary) + " · " if facts.summary else ""}published {_date(release.date)}</p>',
        f'<h2>Install</h2>\n<p><code class="copy">{e(install_line(simple_url, project, release.version))}</code></p>'
        f'<p class="muted">Hash-locked (<code>pip install --index-url {e(simple_url)} --require-hashes --no-deps -r lock.txt</code>):</p>'
        f'<pre class="copy" id="lock">{e(lock_lines(project, release))}</pre>'
        + (f'<p class="muted" id="onnx-install">Without scikit-learn (onnxruntime and numpy only; ONNX copies of '
           f'{", ".join(e(name) for name in onnx)}):</p>'
           f'<p><code class="copy">{e(install_line(simple_url, f"{project}-onnx", release.version))}</code></p>'
           if onnx else ""),
    ]
    if facts.problem:
        sections.append(f'<h2>Unreadable</h2>\n<p id="unreadable">The wheel\'s JSON files cannot be read, so this page '
                        f'shows no models, metrics or schema: {e(facts.problem)}</p>')
    if models:
        sections.append('<h2>Metrics (held-out split)</h2>\n<div class="scroll"><table id="metrics"><thead><tr>'
                        "<th>model</th><th>estimator</th>"
                        + "".join(f"<th>{e(_METRIC_NAMES.get(m, m))}</th>" for m in metric_names)
                        + f"</tr></thead><tbody>{metric_rows}</tbody></table></div>" + _gate_note(release))
    sections.append(_per_class_html(facts.models))
    sections.append(figures_html(release))
    sections.append(_onnx_html(facts.models))
    sections.append(_changes_html(changes, previous, project, root, release.version))
    sections += [_schema_html(first.get("input_schema")), _lineage_html(first, root), _files_html(release, root)]
    shown = {figures.href(model, kind) for model, kinds in figures.listed(release).items() for kind in kinds}
    card = (_MARKDOWN.render(facts.card, {"figures": shown}) if facts.card.strip()
            else "<p class=\"muted\">This version has no model card.</p>")
    sections.append(f'<h2>Model card</h2>\n<article class="card" id="card">{card}</article>')
    return _page(f"{project} {release.version} · registry", "\n".join(s for s in sections if s), root)


def figure_html(src: str, model: str, kind: str) -> str:
    """One figure as an image (never inline: an SVG from a wheel runs nothing as an ``<img>``)."""
    return (f'<figure data-model="{e(model)}" data-kind="{e(kind)}"><img class="figure" src="{e(src)}" '
            f'alt="{e(model)}: {e(figures.title(kind))}" width="403" height="302">'
            f"<figcaption>{e(figures.title(kind))}</figcaption></figure>")


def baseline_note(release: Release) -> str:
    """Whose curves the figures show dashed, or why none, as the release recorded it."""
    recorded = release.facts.release.get("figures_baseline")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("version"), str):
        return ""
    if recorded.get("not_drawn"):
        return f'<p class="muted baseline">No baseline drawn against {e(recorded["version"])}: {e(recorded["not_drawn"])}.</p>'
    return (f'<p class="muted baseline">Dashed curves: {e(recorded["version"])}, the version this one was gated '
            f'against, on the {e(recorded.get("rows"))} held-out rows both scored.</p>')


def figures_html(release: Release) -> str:
    """A version's evaluation figures, model by model, as its wheel lists them (index/registry/figures.py)."""
    shown = figures.listed(release)
    if not shown:
        return ""
    blocks = [f'<h3>{e(model)}</h3>\n<div class="figures">'
              + "".join(figure_html(figures.href(model, kind), model, kind) for kind in kinds) + "</div>"
              for model, kinds in shown.items()]
    return '<h2>Figures (held-out rows)</h2>\n<div id="figures">' + baseline_note(release) + "\n".join(blocks) + "</div>"


def per_class(meta: dict) -> tuple[dict[str, dict], int]:
    """A model's precision, recall, F1 and support per class (metadata "per_class"), at most PER_CLASS_ROWS
    classes (a wheel is hostile input: it may name any number), and how many more it recorded."""
    recorded = meta.get(contract.PER_CLASS_KEY) if isinstance(meta, dict) else None
    if not isinstance(recorded, dict):
        return {}, 0
    shown = {str(label): values if isinstance(values, dict) else {}
             for label, values in list(recorded.items())[:PER_CLASS_ROWS]}
    return shown, len(recorded) - len(shown)


def _per_class_html(models: dict[str, dict]) -> str:
    """Each classifier's precision, recall, F1 and support per class (``per_class``)."""
    rows, more = [], []
    for name, meta in sorted(models.items()):
        shown, hidden = per_class(meta)
        for label, values in shown.items():
            rows.append(f'<tr data-model="{e(name)}" data-class="{e(label)}"><td>{e(name)}</td><td>{e(label)}</td>'
                        + "".join(f'<td class="num">{_metric(values.get(k))}</td>' for k in ("precision", "recall", "f1"))
                        + f'<td class="num">{e(values.get("support"))}</td></tr>')
        if hidden:
            more.append(f"{e(name)}: {hidden} more classes not shown")
    if not rows:
        return ""
    note = f'<p class="muted">{"; ".join(more)}.</p>' if more else ""
    return ('<h2>Per class (held-out split)</h2>\n<div class="scroll"><table id="per-class"><thead><tr><th>model</th>'
            "<th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>"
            + "".join(rows) + f"</tbody></table></div>{note}")


def _onnx_html(models: dict[str, dict]) -> str:
    """Each model's ONNX copy (metadata "onnx"): yes, or no with the reason; nothing for builds that recorded none."""
    records = {name: meta.get("onnx") for name, meta in sorted(models.items()) if isinstance(meta.get("onnx"), dict)}
    if not records:
        return ""
    rows = "".join(f"<tr><td>{e(name)}</td><td>"
                   + ("yes" if record.get("status") == "converted"
                      else f"no ({e(record.get('status'))}: {e(record.get('reason'))})") + "</td></tr>"
                   for name, record in records.items())
    return f'<h2>ONNX</h2>\n<table id="onnx"><thead><tr><th>model</th><th>ONNX</th></tr></thead><tbody>{rows}</tbody></table>'


def _gate_note(release: Release) -> str:
    """The metric the release gate compared, where the wheel recorded it."""
    recorded = release.facts.release.get("gate")
    metric, lower = release.gate
    if not isinstance(recorded, dict) or recorded.get("metric") != metric:
        return ""
    return (f'<p class="muted" id="gate">The release gate compared {e(_METRIC_NAMES.get(metric, metric))} '
            f'with the previous version\'s ({"lower" if lower else "higher"} is better).</p>')


def compare_href(project: str, a: str, b: str) -> str:
    """The page showing ``a`` and ``b`` side by side, relative to the index root."""
    return f"{package_href(project)}compare/{quote(a, safe='')}/{quote(b, safe='')}/"


def _changes_html(changes: list[tuple[str, str]] | str | None, previous: str | None, project: str, root: str,
                  version: str = "") -> str:
    if previous is None:
        return "<h2>Diff against the previous version</h2>\n<p class=\"muted\">The first version on this index.</p>"
    link = f'<a href="{e(root + version_href(project, previous))}">{e(previous)}</a>'
    side_by_side = (f'<p><a id="compare" href="{e(root + compare_href(project, previous, version))}">Compare '
                    f'{e(previous)} and {e(version)} side by side</a>: metrics, per-class metrics, data and figures.</p>'
                    if version else "")
    if isinstance(changes, str):
        return f"<h2>Diff against {link}</h2>\n{side_by_side}<p class=\"muted\">{e(changes)}.</p>"
    if not changes:
        return f"<h2>Diff against {link}</h2>\n{side_by_side}<p class=\"muted\">Nothing changed.</p>"
    items = "".join(f'<li><span class="group">{e(group)}</span>: {e(text)}</li>' for group, text in changes)
    return f'<h2>Diff against {link}</h2>\n{side_by_side}<ul class="changes" id="changes">{items}</ul>'


def _schema_html(schema: t.Any) -> str:
    if not isinstance(schema, dict) or not isinstance(schema.get("columns"), list):
        return ""
    rows = "".join(
        f"<tr><td class=\"mono\">{e(c.get('name'))}</td><td>{e(c.get('dtype'))}</td>"
        f"<td>{'yes' if c.get('allows_missing', True) else 'no'}</td>"
        f"<td>{', '.join(e(v) for v in c.get('categories', [])) or '-'}</td></tr>"
        for c in schema["columns"] if isinstance(c, dict))
    return ('<h2>Input schema</h2>\n<div class="scroll"><table id="schema"><thead><tr><th>column</th><th>dtype</th>'
            f"<th>missing allowed</th><th>categories</th></tr></thead><tbody>{rows}</tbody></table></div>"
            f'<p class="muted">Unseen categories: {e(schema.get("unseen_categories"))}.</p>')


def _task_text(metadata: dict) -> str:
    """e.g. ``regression (progression points)`` or ``classification: barbera, barolo, grignolino``"""
    task, units, classes = metadata.get("task", "classification"), metadata.get("target_units"), metadata.get("classes")
    if task == "regression":
        return "regression" + (f" ({e(units)})" if units else "")
    shown = ", ".join(e(c) for c in classes) if isinstance(classes, list) else ""
    return e(task) + (f": {shown}" if shown else "")


def _lineage_html(metadata: dict, root: str = "") -> str:
    data = metadata.get("data") if isinstance(metadata.get("data"), dict) else {}
    git = metadata.get("git") if isinstance(metadata.get("git"), dict) else {}
    split = data.get("split") if isinstance(data.get("split"), dict) else {}
    environment = metadata.get("training_environment")
    facts = [("task", _task_text(metadata)), ("data source", e(data.get("source"))), ("data sha256", f'<span class="mono">{e(data.get("sha256"))}</span>'),
             ("rows", e(data.get("rows"))), ("target", e(data.get("target"))),
             ("split", ", ".join(f"{e(k)} {e(v)}" for k, v in sorted(split.items())) or "-"),
             ("git commit", f'<span class="mono">{e(git.get("commit"))}</span>'
                            + (' <span class="badge yanked">uncommitted changes</span>' if git.get("dirty") else ""))]
    facts[3:3] = _data_package_facts(data.get("package"), root)
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    env = ""
    if isinstance(environment, dict) and environment:
        env = ('<h2>Training environment</h2>\n<div class="scroll"><table id="environment"><thead><tr><th>library</th>'
               "<th>version</th></tr></thead><tbody>"
               + "".join(f"<tr><td>{e(k)}</td><td class=\"mono\">{e(v)}</td></tr>" for k, v in sorted(environment.items()))
               + "</tbody></table></div>")
    return f'<h2>Data and source</h2>\n<dl class="facts" id="lineage">{items}</dl>\n{env}'


def _data_package_facts(pinned: t.Any, root: str) -> list[tuple[str, str]]:
    """The data package the models pin (pipeline/steps/data_package.py), linked to its page on this index."""
    if not isinstance(pinned, dict) or not isinstance(pinned.get("name"), str):
        return []
    href = root + "simple/" + quote(pinned["name"]) + "/"
    return [("data package", f'<a href="{e(href)}">{e(pinned.get("requirement"))}</a>'),
            ("data wheel sha256", f'<span class="mono">{e(pinned.get("sha256"))}</span>'),
            ("data size", f'{e(pinned.get("rows"))} rows, {e(pinned.get("columns"))} columns, '
                          f'{_size(pinned["size"]) if isinstance(pinned.get("size"), int) else "-"}')]


def _files_html(release: Release, root: str) -> str:
    rows = "".join(
        f'<tr><td class="nowrap"><a href="{e(root + "packages/" + quote(f.path))}">{e(f.filename)}</a></td>'
        f'<td class="num">{_size(f.size)}</td><td class="mono">{e(f.sha256)}</td></tr>'
        for f in (release.wheel, release.sdist))
    return ('<h2>Files</h2>\n<div class="scroll"><table id="files"><thead><tr><th>file</th><th>size</th><th>sha256</th>'
            f"</tr></thead><tbody>{rows}</tbody></table></div>")
