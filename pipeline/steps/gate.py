"""The metric gate: the new models against those of the highest published version.

Scores are compared on the same rows. When only the split changed (same data, another
seed or test size), each model's recorded score is for other rows: if this clone
released that version (its sha256 is in ``releases/`` or the clone's git history, records
the index cannot write), the published wheel is downloaded, checked against that record
and its model files against its manifest, and both versions are scored on the rows that
both splits held out. A version this clone has no record of is never unpickled (anyone who
can upload could have put any pickle in it): each version is gated on its own split, and
the table says so. When the data changed, the published models cannot be scored on rows
they never saw (they may have trained on any of the new held-out rows): each is gated on
its own split, and the table says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile

from pipeline.package.own_package import contract
from pipeline.views import registry
from pipeline.steps import release_records
from pipeline.config import IMPORT_NAME, DatasetConfig
from pipeline.steps.data import Dataset
from pipeline.errors import GateError, PackageIndexError
from pipeline.indexes.base import IndexClient, ServedFile
from pipeline.steps.release_records import Record
from pipeline.steps.train import MODEL_FILE, TrainedModel, evaluate, split

Snapshot = contract.Snapshot


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


def rescore(client: IndexClient, version: str, record: Record, models: list[TrainedModel], dataset: Dataset,
            config: DatasetConfig) -> dict[str, tuple[float, float, int]]:
    """(published, new, rows) of the gated metric on the rows both versions held out, for
    ``models`` whose published twin used the same data with another split. The published
    wheel must be the one ``record`` names; its JSON files are read from those checked bytes."""
    if not models:
        return {}
    metric = (config.gate.metric,)
    _, X_test, _, y_test = split(dataset, config)
    scores = {}
    with recorded_wheel(client, version, record) as archive:
        manifest, released = registry.wheel_json(archive, version)
        old_split = released.get(models[0].name, {}).get("data", {}).get("split", {})
        if "seed" not in old_split or "test_size" not in old_split:
            raise PackageIndexError(f"the published {version} records no split seed and test size for "
                                    f"{models[0].name}; pass FORCE=1 to release without the gate")
        old_config = dataclasses.replace(config, test_size=old_split["test_size"], seed=old_split["seed"])
        rows = X_test.index.intersection(split(dataset, old_config)[1].index)
        X_common, y_common = X_test.loc[rows], y_test.loc[rows]
        for model in models:
            data = archive.read(f"{IMPORT_NAME}/models/{model.name}/{MODEL_FILE}")
            if hashlib.sha256(data).hexdigest() != manifest.get("files", {}).get(f"{model.name}/{MODEL_FILE}"):
                raise PackageIndexError(f"{model.name}'s model in the published {version} does not match "
                                        "its manifest; it is not loaded: check the index folder")
            import joblib

            before = joblib.load(io.BytesIO(data))
            scores[model.name] = tuple(
                evaluate(fitted, X_common, y_common, config.task, metric, config.metrics, model.name)[config.gate.metric]
                for fitted in (before, model.pipeline)) + (len(rows),)
    return scores


def compare(client: IndexClient, published: Snapshot, models: list[TrainedModel], dataset: Dataset,
            config: DatasetConfig) -> tuple[list[str], str]:
    """Models whose gated metric got worse by more than allowed, and a side-by-side table of it."""
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
                  "it (releases/, git history), and a pickle from the index could run any code; each version is "
                  "gated on its own split")
        else:
            on_common_rows = rescore(client, published.version, record, resplit, dataset, config)
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


def check(client: IndexClient, baseline: str | None, models: list[TrainedModel], dataset: Dataset,
          config: DatasetConfig, force: bool) -> dict:
    """Raise GateError on a drop unless forced; return what to record in the release notes."""
    if baseline is None:
        return {}
    rule = config.gate
    try:
        published = registry.published(client, baseline).snapshot
        failed, table = compare(client, published, models, dataset, config)
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
