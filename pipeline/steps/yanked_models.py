"""A yank stays decided: a release does not publish the models of a yanked version again.

The version step compares with the highest version that is not yanked, so with nothing changed
since a yanked release the next one would publish the yanked models under the next number, and a
daily scheduled ``make release`` would undo every yank. The trained models are compared with each
yanked version's by the sha256 of every model file: as the yanked wheel's manifest records them
(its JSON files, read once and kept by the wheel's sha256; never unpickled) and as ``make train``
left them in this clone. A yanked wheel that cannot be read has nothing to compare and is passed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import MODELS_DIR, PACKAGE
from pipeline.errors import YankedModelsError
from pipeline.indexes.base import IndexClient, ServedFile
from pipeline.views import registry


@dataclass(frozen=True)
class Yanked:
    version: str
    reason: str  # "" when the yank gave none

    @property
    def shown(self) -> str:
        return f"{self.version} ({self.reason or 'no reason given'})"


def same_models(client: IndexClient, models_dir: Path = MODELS_DIR, files: list[ServedFile] | None = None) -> list[Yanked]:
    """The yanked versions whose models are byte-identical to those in ``models_dir``, newest first."""
    files = client.files() if files is None else files
    reasons = {f.version: f.yanked for f in files if f.yanked is not None}
    yanked = [v for v in reversed(registry.complete_versions(client, files)) if v in reasons]
    if not yanked:
        return []  # the trained models are not even hashed
    trained = registry.local_snapshot(models_dir).model_sha256
    found = []
    for version in yanked:
        entry = registry.published_entry(client, version, files)
        if entry.problem is None and entry.snapshot.model_sha256 == trained:
            found.append(Yanked(version, reasons[version]))
    return found


def check(client: IndexClient, force: bool, models_dir: Path = MODELS_DIR) -> dict:
    """Refuse (YankedModelsError) to publish the trained models when a yanked version holds the same
    bytes, unless forced; the release notes that record the override."""
    same = same_models(client, models_dir)
    if not same:
        return {}
    newest, *others = same
    also = f" (and {', '.join(y.shown for y in others)})" if others else ""
    if not force:
        raise YankedModelsError(
            f"the trained models are byte-identical to those of {PACKAGE} {newest.shown}, which is yanked{also}: "
            f"publishing them again would undo the yank; make unyank VERSION={newest.version} to hand that version "
            "out again, change or revert the code, data or settings that made them, or pass FORCE=1 to release them "
            "anyway (recorded in the package)")
    print(f"the trained models are those of yanked {PACKAGE} {newest.shown}{also}: FORCE=1 releases them anyway, "
          "recorded in the package (yank_overridden)")
    return {"yank_overridden": {"yanked": newest.version, "reason": newest.reason,
                                "also": [y.version for y in others]}}
