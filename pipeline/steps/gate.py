"""The metric gate: the new models against those of the highest published version, and that
version's curves for the new version's figures.

Scores are compared on the same rows. When only the split changed (same data, another
seed or test size), each model's recorded score is for other rows: if this clone
released that version (its sha256 is in ``releases/`` or HEAD's git history, records
the index cannot write), the published wheel is downloaded, checked against that record
and its model files against its manifest, and both versions are scored on the rows that
both splits held out. A version this clone has no record of is never unpickled (anyone who
can upload could have put any pickle in it): each version is gated on its own split, and
the table says so. When the data changed, the published models cannot be scored on rows
they never saw (they may have trained on any of the new held-out rows): each is gated on
its own split, and the table says so.

The same rule decides the baseline drawn on the new version's ROC, precision-recall and
calibration figures (``baseline``): its curves come from the published wheel only when this
clone recorded that wheel's bytes, and only on the rows both versions held out; otherwise
no baseline is drawn, and the release says why in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.package.own_package import contract, published as published_files
from pipeline.views import registry
from pipeline.steps import evaluation, release_records
from pipeline.config import CLASSIFICATION, IMPORT_NAME, DatasetConfig
from pipeline.errors import GateError, PackageIndexError
from pipeline.indexes.base import IndexClient, ServedFile
from pipeline.steps.release_records import Record
from pipeline.steps.model_files import MODEL_FILE, TrainedModel

if TYPE_CHECKING:
    from pipeline.steps.data import Dataset

Snapshot, task_of = contract.Snapshot, contract.task_of


def published_wheel(client: IndexClient, version: str) -> zipfile.ZipFile:
    """The wheel of ``version`` as the index serves it, downloaded once: for its JSON files only."""
    # On disk, not in memory: the ZipFile reads members from an anonymous temporary file,
    # which is deleted when the archive is closed or collected.
    return registry.open_wheel(client.download_temporary(_served_wheel(client, version)), version)


def recorded_wheel(client: IndexClient, version: str, record: Record) -> zipfile.ZipFile:
    """The wheel of ``version``, refused unless its bytes are the ones this clone recorded at release."""
    served = _served_wheel(client, version)
    if served.sha256 and served.sha256 not in record.sha256:
        raise _not_recorded(version, served.sha256, record)
    download = client.download_temporary(served)
    digest = hashlib.file_digest(download, "sha256").hexdigest()
    if digest not in record.sha256:
        download.close()
        raise _not_recorded(version, digest, record)
    download.seek(0)
    return registry.open_wheel(download, version)


def _served_wheel(client: IndexClient, version: str) -> ServedFile:
    wheels = [f for f in client.files() if f.version == version and f.filename.endswith(".whl")]
    if not wheels:
        raise PackageIndexError(f"the index has no wheel for {version}; make the index whole again, "
                                f"or pass FORCE=1 to release without comparing")
    return wheels[0]


def _not_recorded(version: str, digest: str, record: Record) -> PackageIndexError:
    return PackageIndexError(
        f"the index serves a wheel of {version} with sha256 {digest}, not the one this clone recorded when it "
        f"released it ({record.where}), so it is not loaded; put the released file back on the index, yank the "
        f"version (make yank VERSION={version} REASON=...) to compare with the one before it, or pass FORCE=1 "
        "to release without the gate")


def same_rows(old: dict, new: dict) -> bool:
    """Were both models scored on the same held-out rows (same data, same split)?"""
    keys = ("sha256", "rows", "split")
    return all(old.get("data", {}).get(k) == new.get("data", {}).get(k) for k in keys)


def same_data(old: dict, new: dict) -> bool:
    return old.get("data", {}).get("sha256") == new.get("data", {}).get("sha256")


def same_inputs(old: dict, new: dict) -> bool:
    def columns(meta: dict) -> list:
        return [(c["name"], c["dtype"]) for c in meta.get("input_schema", {}).get("columns", [])]
    return columns(old) == columns(new)


def rescore(client: IndexClient, version: str, record: Record, models: list[TrainedModel],
            load_data: Callable[[], Dataset], config: DatasetConfig) -> dict[str, tuple[float, float, int]]:
    """(published, new, rows) of the gated metric on the rows both versions held out, for
    ``models`` whose published twin used the same data with another split. The published
    wheel must be the one ``record`` names; its JSON files are read from those checked bytes."""
    if not models:
        return {}
    from pipeline.steps.train import evaluate  # scikit-learn: only to score again

    metric = (config.gate.metric,)
    dataset = load_data()
    scores = {}
    with recorded_wheel(client, version, record) as archive:
        manifest, released = registry.wheel_json(archive, version)
        X_common, y_common = common_rows(dataset, config, released.get(models[0].name, {}), version, models[0].name)
        for model in models:
            before = _published_model(archive, manifest, model.name, version)
            scores[model.name] = tuple(
                evaluate(fitted, X_common, y_common, config.task, metric, config.metrics, model.name)[config.gate.metric]
                for fitted in (before, model.fitted())) + (len(X_common),)
    return scores


def common_rows(dataset: Dataset, config: DatasetConfig, old: dict, version: str, name: str):
    """(X, y) of the new split's held-out rows that the published model's split (its metadata ``old``) held out too."""
    from pipeline.steps.train import split  # scikit-learn: only to score again

    _, X_test, _, y_test = split(dataset, config)
    old_split = old.get("data", {}).get("split", {})
    if "seed" not in old_split or "test_size" not in old_split:
        raise PackageIndexError(f"the published {version} records no split seed and test size for "
                                f"{name}; pass FORCE=1 to release without the gate")
    old_config = dataclasses.replace(config, test_size=old_split["test_size"], seed=old_split["seed"])
    rows = X_test.index.intersection(split(dataset, old_config)[1].index)
    return X_test.loc[rows], y_test.loc[rows]


def _published_model(archive: zipfile.ZipFile, manifest: dict, name: str, version: str):
    """The pipeline of model ``name`` from a published wheel the caller checked against this clone's record,
    unpickled only when its bytes are those its manifest names."""
    data = archive.read(f"{IMPORT_NAME}/models/{name}/{MODEL_FILE}")
    if hashlib.sha256(data).hexdigest() != manifest.get("files", {}).get(f"{name}/{MODEL_FILE}"):
        raise PackageIndexError(f"{name}'s model in the published {version} does not match "
                                "its manifest; it is not loaded: check the index folder")
    import joblib

    return joblib.load(io.BytesIO(data))


@dataclass(frozen=True)
class Baseline:
    """The published baseline's curves on the new version's held-out rows, for its figures
    (pipeline/steps/figures.py draws them dashed), or why there are none."""

    version: str
    rows: int = 0
    curves: dict[str, dict] = field(default_factory=dict)  # model -> class label -> roc, precision_recall, calibration
    not_drawn: str | None = None

    def of(self, model: str) -> dict | None:
        """What the build records under ``baseline`` in ``model``'s evaluation.json."""
        curves = self.curves.get(model)
        return {"version": self.version, "rows": self.rows, "curves": curves} if curves else None

    @property
    def notes(self) -> dict:
        """For the release notes (manifest.json "release"): whose curves the figures show, or why none."""
        if self.curves:
            return {"figures_baseline": {"version": self.version, "rows": self.rows, "models": sorted(self.curves)}}
        return {"figures_baseline": {"version": self.version, "not_drawn": self.not_drawn}}

    def describe(self, seconds: float) -> str:
        if self.curves:
            return (f"figures: {self.version}'s curves drawn dashed for {', '.join(sorted(self.curves))} "
                    f"(the {self.rows} held-out rows both versions scored) in {seconds:.2f} s")
        return f"figures: no baseline drawn ({self.not_drawn}) in {seconds:.2f} s"


def baseline(client: IndexClient, version: str | None, models: list[TrainedModel], load_data: Callable[[], Dataset],
             config: DatasetConfig) -> Baseline | None:
    """The curves of published ``version`` (the gate's baseline) for the new classifiers' figures;
    None when there is nothing to draw them on (the first release, a regression). ``load_data`` gives
    the dataset, read only when the published models are scored on the rows both splits held out."""
    if version is None or config.task != CLASSIFICATION:
        return None
    try:
        old = registry.published(client, version).snapshot.models
    except PackageIndexError as exc:
        return Baseline(version, not_drawn=getattr(exc, "problem", str(exc)))
    named = [m for m in models if m.name in old and task_of(old[m.name]) == CLASSIFICATION]
    drawn = [m for m in named if same_data(old[m.name], m.metadata) and same_inputs(old[m.name], m.metadata)]
    if not drawn:
        why = ("no classifier of it has a name the new models have" if not named
               else "the data changed, so its models may have trained on these held-out rows"
               if not any(same_data(old[m.name], m.metadata) for m in named) else "the input columns changed")
        return Baseline(version, not_drawn=why)
    record = release_records.recorded(version)
    if record is None:
        return Baseline(version, not_drawn=f"{version} is not in this clone's release records (releases/, HEAD's git "
                                           "history), so its wheel is not loaded")
    try:
        with recorded_wheel(client, version, record) as archive:
            manifest, _ = registry.wheel_json(archive, version)
            return _baseline_curves(archive, manifest, version, drawn, old, load_data, config)
    except PackageIndexError as exc:
        return Baseline(version, not_drawn=getattr(exc, "problem", str(exc)).split("; ")[0])


def _baseline_curves(archive: zipfile.ZipFile, manifest: dict, version: str, models: list[TrainedModel],
                     old: dict[str, dict], load_data: Callable[[], Dataset], config: DatasetConfig) -> Baseline:
    """On the same held-out rows, the curves the published version recorded (its evaluation.json);
    on the rows both splits held out, the curves of its unpickled models."""
    first = models[0]
    if same_rows(old[first.name], first.metadata):
        recorded = {m.name: _recorded_curves(archive, m.name) for m in models}
        if all(curves is not None for curves in recorded.values()):
            return Baseline(version, first.metadata["data"]["split"]["test_rows"], recorded)
    X, y = common_rows(load_data(), config, old[first.name], version, first.name)
    if y.nunique() < 2:
        return Baseline(version, not_drawn=f"the {len(y)} rows both splits held out hold one class only")
    published = {m.name: _published_model(archive, manifest, m.name, version) for m in models}
    return Baseline(version, len(X), {name: evaluation.curves(model, X, y) for name, model in published.items()})


def _recorded_curves(archive: zipfile.ZipFile, name: str) -> dict | None:
    """The curves the published models/<name>/evaluation.json holds; None when it holds none (built before
    figures) or cannot be read."""
    try:
        document = evaluation.published(archive, IMPORT_NAME, name)
    except published_files.MalformedBuild:
        return None
    return document.get("curves") if document else None


def compare(client: IndexClient, published: Snapshot, models: list[TrainedModel], load_data: Callable[[], Dataset],
            config: DatasetConfig) -> tuple[list[str], str]:
    """Models whose gated metric got worse by more than allowed, and a side-by-side table of it
    (``load_data`` gives the dataset, read only when the published models are scored again)."""
    new = {m.name: m.metadata for m in models}
    old = published.models
    failed, rule = [], config.gate
    # a published model without the gated metric (another task) has nothing to compare with
    compared = {name for name in set(new) & set(old) if rule.metric in old[name].get("metrics", {})}
    resplit = [m for m in models if m.name in compared and not same_rows(old[m.name], new[m.name])
               and same_data(old[m.name], new[m.name]) and same_inputs(old[m.name], new[m.name])]
    on_common_rows, not_loaded = {}, None
    if resplit:
        record = release_records.recorded(published.version)
        if record is None:
            not_loaded = f"{published.version} is not in this clone's release records, not loaded"
            print(f"the published wheel of {published.version} was not loaded: this clone has no record of releasing "
                  "it (releases/, HEAD's git history), and a pickle from the index could run any code; each version is "
                  "gated on its own split")
        else:
            on_common_rows = rescore(client, published.version, record, resplit, load_data, config)
    width = max(24, *(len(name) + 2 for name in set(new) | set(old)))  # the longest name fits
    lines = [f"{'model':<{width}}{'published':>10}{'new':>9}{'gated: published':>18}{'new':>9}{'change':>9}  compared on"]
    for name in sorted(set(new) | set(old)):
        before = old.get(name, {}).get("metrics", {}).get(rule.metric)
        after = new.get(name, {}).get("metrics", {}).get(rule.metric)
        if name not in old or name not in new:
            note = "a new model: nothing to compare with" if name not in old else "removed"
            lines.append(f"{name:<{width}}{_fmt(before):>10}{_fmt(after):>9}{'-':>18}{'-':>9}{'-':>9}  {note}")
            continue
        if name not in compared:
            lines.append(f"{name:<{width}}{'-':>10}{_fmt(after):>9}{'-':>18}{'-':>9}{'-':>9}  "
                         f"the published model has no {rule.metric}: nothing to compare with")
            continue
        if name in on_common_rows:
            gated_before, gated_after, rows = on_common_rows[name]
            note = f"the {rows} rows both splits held out (the split changed)"
        elif same_rows(old[name], new[name]):
            gated_before, gated_after, note = before, after, "the same held-out rows"
        else:
            gated_before, gated_after = before, after
            note = ("each version's own split: the input schema changed" if not same_inputs(old[name], new[name])
                    else "each version's own split: the data changed" if not same_data(old[name], new[name])
                    else f"each version's own split: {not_loaded or 'the split changed'}")
        change = gated_after - gated_before
        flag = rule.worse(change)
        if flag:
            failed.append(name)
        lines.append(f"{name:<{width}}{before:>10.4f}{after:>9.4f}{gated_before:>18.4f}{gated_after:>9.4f}{change:>+9.4f}"
                     f"  {note}{('  <- increase' if rule.lower_is_better else '  <- drop') if flag else ''}")
    return failed, "\n".join(lines)


def check(client: IndexClient, baseline: str | None, models: list[TrainedModel], load_data: Callable[[], Dataset],
          config: DatasetConfig, force: bool) -> dict:
    """Raise GateError on a drop unless forced; return what to record in the release notes."""
    if baseline is None:
        return {}
    rule = config.gate
    try:
        published = registry.published(client, baseline).snapshot
        failed, table = compare(client, published, models, load_data, config)
    except PackageIndexError as exc:
        if not force:
            raise
        problem = getattr(exc, "problem", str(exc))
        print(f"cannot score against {baseline} ({problem}): FORCE=1 releases without the gate")
        return {"gate_skipped": {"against": baseline, "reason": problem}}
    print(f"{rule.metric} against {baseline}:\n{table}")
    if not failed:
        return {}
    if not force:
        moved = "rose" if rule.lower_is_better else "dropped"
        setting = "max_increase" if rule.lower_is_better else "max_accuracy_drop" if rule.metric == "accuracy" else "max_drop"
        raise GateError(f"{rule.metric} {moved} by more than {rule.allowed} against {baseline} for "
                        f"{', '.join(failed)} (table above); improve the models, raise {setting} in "
                        "dataset.toml, or release anyway with FORCE=1")
    return {"gate_overridden": {"against": baseline, "models": failed, rule.setting: rule.allowed}}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
