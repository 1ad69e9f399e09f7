"""The metric gate: the new models against those of the highest published version."""

from __future__ import annotations

import io
import json
import zipfile

from pipeline.config import PACKAGE
from pipeline.errors import GateError, PackageIndexError
from pipeline.index_api import IndexClient

GATED_METRIC = "accuracy"


def published_wheel(client: IndexClient, version: str) -> zipfile.ZipFile:
    """The wheel of ``version`` as the index serves it, downloaded once."""
    wheels = [f for f in client.files() if f.version == version and f.filename.endswith(".whl")]
    if not wheels:
        raise PackageIndexError(f"the index has no wheel for {version}; make the index whole again, "
                                f"or pass FORCE=1 to release without comparing")
    return zipfile.ZipFile(io.BytesIO(client.download(wheels[0])))


def read_member(wheel: zipfile.ZipFile, member: str) -> dict:
    """A JSON file of the package inside a published wheel."""
    try:
        return json.loads(wheel.read(f"{PACKAGE}/{member}"))
    except KeyError:
        raise PackageIndexError(f"the published wheel has no {member}; pass FORCE=1 to release without comparing") from None


def published_metrics(client: IndexClient, version: str) -> dict[str, dict[str, float]]:
    return read_member(published_wheel(client, version), "models/metrics.json")


def compare(new: dict[str, dict[str, float]], old: dict[str, dict[str, float]], max_drop: float) -> tuple[list[str], str]:
    """Models whose accuracy dropped by more than ``max_drop``, and a side-by-side table."""
    failed, lines = [], [f"{'model':<24}{'published':>12}{'new':>12}{'change':>12}"]
    for name in sorted(set(new) | set(old)):
        before, after = old.get(name, {}).get(GATED_METRIC), new.get(name, {}).get(GATED_METRIC)
        if before is None or after is None:
            lines.append(f"{name:<24}{_fmt(before):>12}{_fmt(after):>12}{'(new)' if before is None else '(gone)':>12}")
            continue
        change = after - before
        flag = "  <- drop" if change < -max_drop else ""
        if flag:
            failed.append(name)
        lines.append(f"{name:<24}{before:>12.4f}{after:>12.4f}{change:>+12.4f}{flag}")
    return failed, "\n".join(lines)


def check(client: IndexClient, highest: str | None, new: dict, max_drop: float, force: bool) -> dict:
    """Raise GateError on a drop unless forced; return what to record in the release notes."""
    if highest is None:
        return {}
    try:
        published = published_metrics(client, highest)
    except PackageIndexError as exc:
        if not force:
            raise
        print(f"cannot compare against {highest} ({exc}): FORCE=1 releases without comparing")
        return {"gate_skipped": {"against": highest, "reason": str(exc)}}
    failed, table = compare(new, published, max_drop)
    print(f"{GATED_METRIC} against {highest}:\n{table}")
    if not failed:
        return {}
    if not force:
        raise GateError(f"{GATED_METRIC} dropped by more than {max_drop} against {highest} for "
                        f"{', '.join(failed)} (table above); improve the models, raise max_accuracy_drop in "
                        "dataset.toml, or release anyway with FORCE=1")
    return {"gate_overridden": {"against": highest, "models": failed, "max_accuracy_drop": max_drop}}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
