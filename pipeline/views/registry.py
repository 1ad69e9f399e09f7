"""What a published version contains, and the two reports on it: ``make versions``, ``make diff``.

A version's contents are read from its wheel's JSON files (models/manifest.json and
each model's metadata.json) with the package's validating reader (mymodel.published),
never by unpickling, and cached as JSON by the wheel's sha256 under the index's state
folder: a wheel is downloaded once, ever. A wheel whose files cannot be read is listed
as unreadable, with the reason.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from packaging.version import InvalidVersion, Version

from pipeline.package.own_package import contract, errors, published, store
from pipeline.config import DATA_PACKAGE, IMPORT_NAME, MODELS_DIR, PACKAGE
from pipeline.errors import ConfigError, TrainingError, UnreadableRelease, VersionError
from pipeline.indexes.base import IndexClient, ServedFile

BUMP_KIND, GROUPS, Snapshot, task_of = contract.BUMP_KIND, contract.GROUPS, contract.Snapshot, contract.task_of
team_metrics, PER_CLASS_KEY = contract.team_metrics, contract.PER_CLASS_KEY
diff, identical, required_bump = contract.diff, contract.identical, contract.required_bump
MalformedBuild = errors.MalformedBuild
ARCHIVE_ERRORS, check_build, read_build = published.ARCHIVE_ERRORS, published.check_build, published.read_build
MANIFEST_FILE, METADATA_FILE, MODEL_FILE = store.MANIFEST_FILE, store.METADATA_FILE, store.MODEL_FILE

CACHE_FOLDER = "published"  # under the index's state folder
LOCAL_LABEL = "this clone (make train)"


@dataclass(frozen=True)
class Published:
    """A published version's snapshot and what the index says about its wheel."""

    snapshot: Snapshot
    wheel: str  # file name
    wheel_sha256: str
    size: int  # bytes
    uploaded: str | None  # ISO 8601 UTC, from the index's Last-Modified
    problem: str | None = None  # why its JSON files cannot be read (then ``snapshot`` holds no models)


def complete_versions(client: IndexClient, files: list[ServedFile] | None = None) -> list[str]:
    """Versions with both an sdist and a wheel on the index, oldest first: a half-published one is not published."""
    kinds: dict[str, set[str]] = {}
    for served in client.files() if files is None else files:
        kind = "wheel" if served.filename.endswith(".whl") else "sdist" if served.filename.endswith(".tar.gz") else None
        if kind:
            kinds.setdefault(served.version, set()).add(kind)
    return sorted((v for v, k in kinds.items() if k == {"wheel", "sdist"}), key=Version)


def published_snapshot(client: IndexClient, version: str) -> Snapshot:
    return published(client, version).snapshot


def published(client: IndexClient, version: str, files: list[ServedFile] | None = None) -> Published:
    """The contents of a published ``version``; UnreadableRelease when its wheel cannot be read."""
    entry = published_entry(client, version, files)
    if entry.problem:
        raise _unreadable(entry.snapshot.version or version, entry.problem,
                          "compare another version (make versions marks the unreadable ones)")
    return entry


def published_entry(client: IndexClient, version: str, files: list[ServedFile] | None = None) -> Published:
    """What the index serves as ``version``: from the cache, else read from its wheel once (a wheel
    that cannot be read gives its ``problem``, kept too: the wheel's bytes never change)."""
    files = client.files() if files is None else files
    complete = complete_versions(client, files)
    wanted = _normalised(version)
    if wanted not in complete:
        raise VersionError(f"{PACKAGE} {version} is not published on {client.url}; published: "
                           f"{', '.join(reversed(complete)) or 'none (run make release)'}")
    wheel = next(f for f in files if f.version == wanted and f.filename.endswith(".whl"))
    cache_dir = client.settings.state_dir / CACHE_FOLDER
    cached = _read_cache(cache_dir, wheel.sha256) if wheel.sha256 else None
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix=f"{IMPORT_NAME}-published-") as tmp:
        local = Path(tmp) / wheel.filename
        sha256, size, modified = client.download_verified(wheel, local)
        try:
            snapshot, problem = _read_wheel(local, wanted), None
        except MalformedBuild as exc:
            snapshot, problem = Snapshot(wanted, {}, {}, {}), str(exc)
    uploaded = email.utils.parsedate_to_datetime(modified).isoformat() if modified else None
    result = Published(snapshot, wheel.filename, sha256, size, uploaded, problem)
    _write_cache(cache_dir, result)
    return result


def local_snapshot(models_dir: Path = MODELS_DIR) -> Snapshot:
    """The models ``make train`` left in this clone: their metadata and model bytes' sha256."""
    names = sorted(p.name for p in models_dir.iterdir()
                   if (p / MODEL_FILE).is_file() and (p / METADATA_FILE).is_file()) if models_dir.is_dir() else []
    if not names:
        raise TrainingError(f"there are no trained models in {models_dir}; run make train first")
    models, hashes = {}, {}
    for name in names:
        models[name] = json.loads((models_dir / name / METADATA_FILE).read_text(encoding="utf-8"))
        with open(models_dir / name / MODEL_FILE, "rb") as handle:
            hashes[name] = hashlib.file_digest(handle, "sha256").hexdigest()
    from pipeline.steps.build import models_requirements  # only here: building imports scikit-learn

    return Snapshot(None, models, hashes, {}, models_requirements(models_dir, models))


def _normalised(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        return version  # not a version at all: reported as unknown, with the published ones


def _read_wheel(path: Path, version: str) -> Snapshot:
    """The snapshot of the wheel at ``path``; MalformedBuild (the reason) when it cannot be read."""
    with _zip(path) as wheel:
        manifest, models = _json_files(wheel)
    hashes = {name: manifest.get("files", {}).get(f"{name}/{MODEL_FILE}") for name in models}
    requires = manifest.get("requires")
    return Snapshot(version, models, hashes, manifest.get("release", {}), requires if isinstance(requires, dict) else {})


# The readers the gate and make verify use on a published wheel: UnreadableRelease, naming the version
UNREADABLE_FIX = "yank it (make yank VERSION=...) and publish a fixed version"


def open_wheel(source: Path | IO[bytes], version: str) -> zipfile.ZipFile:
    """The published wheel of ``version`` (a path or an open file) as a zip archive."""
    try:
        return _zip(source)
    except MalformedBuild as exc:
        raise _unreadable(version, str(exc), UNREADABLE_FIX) from None


def wheel_json(wheel: zipfile.ZipFile, version: str) -> tuple[dict, dict[str, dict]]:
    """The validated manifest and each model's metadata of the published wheel of ``version``;
    UnreadableRelease when it has no manifest or a file is malformed (never unpickles)."""
    try:
        return _json_files(wheel)
    except MalformedBuild as exc:
        raise _unreadable(version, str(exc), UNREADABLE_FIX) from None


def _zip(source: Path | IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except ARCHIVE_ERRORS as exc:
        raise MalformedBuild(f"not a readable wheel ({exc})") from None


def _json_files(wheel: zipfile.ZipFile) -> tuple[dict, dict[str, dict]]:
    names = set(wheel.namelist())
    if f"{IMPORT_NAME}/models/{MANIFEST_FILE}" not in names:
        raise MalformedBuild(f"it has no {IMPORT_NAME}/models/{MANIFEST_FILE}, so it was not built by this pipeline")
    return read_build(names, wheel.read, IMPORT_NAME)


def _unreadable(version: str, reason: str, fix: str) -> UnreadableRelease:
    return UnreadableRelease(f"the wheel of {version} on the index cannot be read ({reason})", fix)


def _read_cache(cache_dir: Path, sha256: str) -> Published | None:
    try:
        raw = json.loads((cache_dir / f"{sha256}.json").read_text(encoding="utf-8"))
        if raw["wheel_sha256"] != sha256 or "requires" not in raw["snapshot"]:
            return None  # another wheel's, or cached before snapshots carried the requirements
        entry = Published(Snapshot(**raw["snapshot"]), raw["wheel"], raw["wheel_sha256"], raw["size"], raw["uploaded"],
                          raw.get("problem"))
        # checked again: an entry kept by an earlier reader may hold what this one refuses
        check_build({"release": entry.snapshot.release}, entry.snapshot.models)
        return entry
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not cached yet, or a damaged entry: read the wheel again


def _write_cache(cache_dir: Path, entry: Published) -> None:
    """Best effort: a cache that cannot be written costs a download next time, nothing else."""
    target = cache_dir / f"{entry.wheel_sha256}.json"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(entry), sort_keys=True), encoding="utf-8")
        os.replace(temporary, target)
    except OSError:
        pass


# The reports ------------------------------------------------------------------------------------------


def versions_output(client: IndexClient, as_json: bool = False) -> str:
    """``make versions``: a table for people, or JSON for scripts."""
    rows = versions_report(client)
    return json.dumps(rows, indent=2) if as_json else versions_table(rows)


def diff_output(client: IndexClient, a: str | None, b: str | None, as_json: bool = False) -> str:
    """``make diff A= [B=]``: a report for people, or JSON for scripts."""
    if not a:
        raise ConfigError("make diff needs A=X.Y.Z+tag (e.g. make diff A=1.1.2+titanic B=1.2.0+titanic; "
                          "make versions lists them)")
    report = diff_report(client, a, b)
    return json.dumps(report, indent=2) if as_json else diff_text(report)


def versions_report(client: IndexClient) -> list[dict]:
    """Every published version, newest first, as plain data (the --json output)."""
    files = client.files()
    yanked = {f.version: f.yanked for f in files if f.yanked is not None}
    return [version_row(version, published_entry(client, version, files), yanked.get(version))
            for version in reversed(complete_versions(client, files))]


def version_row(version: str, entry: Published, yanked: str | None) -> dict:
    """One version of ``make versions``, as plain data."""
    shown = {name: score_metric(meta) for name, meta in sorted(entry.snapshot.models.items())}
    return {
        "version": version,
        "yanked": yanked,
        "unreadable": entry.problem,
        "data_tag": Version(version).local,
        "uploaded": entry.uploaded,
        "wheel": entry.wheel,
        "wheel_size": entry.size,
        "wheel_sha256": entry.wheel_sha256,
        "metric": headline_metric(entry.snapshot),
        "score_metrics": shown,
        "scores": {name: entry.snapshot.models[name].get("metrics", {}).get(metric) for name, metric in shown.items()},
        "accuracy": {name: meta.get("metrics", {}).get("accuracy") for name, meta in sorted(entry.snapshot.models.items())},
        # [evaluation] metrics of each model, and the gate's metric as the release recorded it
        "team_scores": {name: {key: meta["metrics"][key] for key in team_metrics(meta)}
                        for name, meta in sorted(entry.snapshot.models.items())},
        "gate_metric": (entry.snapshot.release.get("gate") or {}).get("metric"),
        "metrics": {name: meta.get("metrics", {}) for name, meta in sorted(entry.snapshot.models.items())},
        "per_class": {name: meta[PER_CLASS_KEY] for name, meta in sorted(entry.snapshot.models.items())
                      if isinstance(meta.get(PER_CLASS_KEY), dict)},
        "bump": entry.snapshot.release.get("bump") or None,
    }


def headline_metric(snapshot: Snapshot) -> str:
    """The score a version is listed by: held-out accuracy for classifiers, R² for regressors."""
    tasks = {task_of(meta) for meta in snapshot.models.values()}
    return "r2" if tasks == {"regression"} else "accuracy"


def score_metric(metadata: dict) -> str:
    """The score one model is listed by: held-out accuracy for a classifier, R² for a regressor."""
    return "r2" if task_of(metadata) == "regression" else "accuracy"


def versions_table(rows: list[dict]) -> str:
    """Each model's column is headed by the metric its scores are; a model listed by accuracy in one
    version and by R² in another (one name, another task) heads ``accuracy|r2`` and names it per cell."""
    if not rows:
        return "no published versions (run make release)"
    models = sorted({name for row in rows for name in row["scores"]})
    metrics = {m: sorted({row["score_metrics"][m] for row in rows if m in row["scores"]}) for m in models}
    # the team's metrics ([evaluation] metrics) follow each model's own score, in one column
    team = {m: sorted({k for row in rows for k in row.get("team_scores", {}).get(m, {})}) for m in models}
    header = (["version", "data", "uploaded", "wheel"]
              + [" ".join([f"{m} {'|'.join(metrics[m])}", *team[m]]) for m in models] + ["status", "bump", "why"])
    lines = []
    for row in rows:
        bump = row["bump"] or {}
        status = "; ".join(([] if row.get("yanked") is None else [f"yanked: {row['yanked'] or 'no reason given'}"])
                           + ([f"unreadable: {row['unreadable']}"] if row.get("unreadable") else [])) or "-"
        scores = [" ".join([_fmt(row["scores"].get(m)) if len(metrics[m]) == 1 or m not in row["scores"]
                            else f"{row['score_metrics'][m]} {_fmt(row['scores'][m])}",
                            *(_fmt(row.get("team_scores", {}).get(m, {}).get(k)) for k in team[m])]) for m in models]
        lines.append([row["version"], row["data_tag"] or "-", _date(row["uploaded"]), _size(row["wheel_size"])]
                     + scores
                     + [status, bump.get("kind") or BUMP_KIND.get(bump.get("part"), "-"),
                        "; ".join(bump.get("reasons", [])) or "-"])
    return _table(header, lines)


def diff_report(client: IndexClient, a: str, b: str | None, models_dir: Path = MODELS_DIR) -> dict:
    """What changed from published ``a`` to published ``b`` (or this clone's trained models)."""
    old = published_snapshot(client, a)
    new = published_snapshot(client, b) if b else local_snapshot(models_dir)
    # the registry's page of both, side by side (figures too): published versions only
    page = client.compare_url(old.version, new.version) if old.version and new.version else None
    return {**diff_between(old, new), "compare_url": page, "data_package": {
        "a": _data_pin(old), "b": _data_pin(new), "url": client.page_url(DATA_PACKAGE)}}


def _data_pin(snapshot: Snapshot) -> str | None:
    """The data package a build's models pin (pipeline/steps/data_package.py), e.g. mymodel-data==1.0.0+wine."""
    pins = {m.get("data", {}).get("package", {}).get("requirement") for m in snapshot.models.values()
            if isinstance(m.get("data"), dict) and isinstance(m["data"].get("package"), dict)}
    return next(iter(sorted(filter(None, pins))), None)


def diff_between(old: Snapshot, new: Snapshot) -> dict:
    """The diff report of two builds, as plain data (the --json output)."""
    changes = diff(old, new)
    bump = required_bump(changes)
    metrics = {}
    for name in sorted(set(old.models) | set(new.models)):
        before = old.models.get(name, {}).get("metrics", {})
        after = new.models.get(name, {}).get("metrics", {})
        metrics[name] = {metric: {"a": before.get(metric), "b": after.get(metric)} for metric in sorted({*before, *after})}
    return {
        "a": old.version,
        "b": new.version,
        "b_label": new.version or LOCAL_LABEL,
        "identical": identical(old, new),
        "required_bump": bump,
        "required_kind": BUMP_KIND.get(bump) if bump else None,
        "changes": {group: [c.text for c in changes if c.group == group] for group in GROUPS},
        "metrics": metrics,
        "per_class": per_class_between(old, new),
        "fit_recorded": {name: values for name in sorted(set(old.models) | set(new.models))
                         if (values := _pairs(_recorded(old.models.get(name, {})), _recorded(new.models.get(name, {}))))},
    }


def _recorded(metadata: dict) -> dict:
    """What a model's fit function recorded (metadata fit.recorded: its best iteration...)."""
    fit = metadata.get("fit")
    recorded = fit.get("recorded") if isinstance(fit, dict) else None
    return recorded if isinstance(recorded, dict) else {}


def _pairs(before: dict, after: dict) -> dict:
    return {key: {"a": before.get(key), "b": after.get(key)} for key in sorted({*before, *after})}


PER_CLASS_METRICS = ("precision", "recall", "f1", "support")


def per_class_between(old: Snapshot, new: Snapshot) -> dict[str, dict[str, dict[str, dict]]]:
    """Each classifier's precision, recall, F1 and support per class, in ``old`` and ``new``:
    {model: {class: {metric: {"a": ..., "b": ...}}}} (a class one build lacks has None there)."""
    report = {}
    for name in sorted(set(old.models) | set(new.models)):
        before, after = (_per_class(snapshot.models.get(name, {})) for snapshot in (old, new))
        if before or after:
            report[name] = {label: {metric: {"a": before.get(label, {}).get(metric), "b": after.get(label, {}).get(metric)}
                                    for metric in PER_CLASS_METRICS}
                            for label in sorted({*before, *after})}
    return report


def _per_class(metadata: dict) -> dict:
    per_class = metadata.get(PER_CLASS_KEY)
    return per_class if isinstance(per_class, dict) else {}


def diff_text(report: dict) -> str:
    a, b = report["a"], report["b_label"]
    bump = report["required_bump"]
    lines = [f"{PACKAGE} {a} -> {b}"]
    if report["identical"]:
        lines.append("no change: the models are byte-identical and the contract is equal; no release needed")
    else:
        lines.append(f"required bump: {bump} ({report['required_kind']})" if bump else
                     "required bump: none (only metrics changed)")
    if report.get("compare_url"):
        lines.append(f"side by side (metrics, per-class metrics, data, figures): {report['compare_url']}")
    pins = report.get("data_package") or {}
    if pins.get("a") == pins.get("b") and pins.get("a"):
        lines += ["", f"data package: {pins['a']}, unchanged ({pins['url']})"]
    elif pins.get("a") or pins.get("b"):
        lines += ["", f"data package: {pins['a'] or '(not published)'} -> {pins['b'] or '(not published)'}"
                      f" ({pins['url']})"]
    for group in GROUPS[:-1]:
        lines += ["", f"{group}:"] + [f"  {text}" for text in report["changes"][group] or ["(no change)"]]
    rows = [[model, metric, _fmt(values["a"]), _fmt(values["b"]), _change(values["a"], values["b"])]
            for model, metrics in report["metrics"].items() for metric, values in metrics.items()]
    rows += [[model, f"fit: {key}", _fmt(values["a"]), _fmt(values["b"]), _change(values["a"], values["b"])]
             for model, recorded in report.get("fit_recorded", {}).items() for key, values in recorded.items()]
    lines += ["", "metrics:", _indent(_table(["model", "metric", a, b, "change"], rows))]
    per_class = [[model, label, metric, _fmt(values["a"]), _fmt(values["b"]), _change(values["a"], values["b"])]
                 for model, labels in report.get("per_class", {}).items() for label, metrics in labels.items()
                 for metric, values in metrics.items()]
    if per_class:
        lines += ["", "per class (held-out rows):", _indent(_table(["model", "class", "metric", a, b, "change"], per_class))]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns; the last one is not padded (it holds free text)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)) + "  " + str(row[-1])
                     for row in [header, *rows]).rstrip()


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _change(before: object, after: object) -> str:
    if isinstance(before, int) and isinstance(after, int) and not isinstance(before, bool):
        return "=" if before == after else f"{after - before:+d}"
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        return "=" if before == after else f"{after - before:+.4f}"
    return "(new)" if before is None else "(gone)" if after is None else ""


def _date(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
