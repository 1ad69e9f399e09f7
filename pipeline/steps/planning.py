"""The next version, derived from what changed against the highest published version.

The trained models' contract (mymodel.contract) is compared with the published one's:
an interface change requires at least a minor bump, a logic, data or library change at
least a patch, and byte-identical models with an equal contract need no release at all.
A BUMP below what the changes require is refused unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.package.own_package import contract
from pipeline.views import registry
from pipeline.config import MODELS_DIR
from pipeline.errors import PackageIndexError, UnreadableRelease, VersionError
from pipeline.indexes.base import IndexClient
from pipeline.steps import used_numbers
from pipeline.steps.versioning import INITIAL_VERSION, bump_part, check_publishable, highest, next_version, parse

(BUMP_KIND, Change, diff, identical, required_bump, with_data_tag) = (
    contract.BUMP_KIND, contract.Change, contract.diff, contract.identical, contract.required_bump, contract.with_data_tag)

PART_RANK = {"patch": 0, "minor": 1, "major": 2}
FIRST_RELEASE = "first release of this clone"
CAUSE_ORDER = ("interface", "data", "environment", "logic")  # how a bump's reasons are listed


@dataclass(frozen=True)
class Plan:
    version: str
    part: str  # the semver part bumped: patch, minor or major
    required: str | None  # what the changes require (None: nothing changed)
    baseline: str | None  # the highest published version compared against
    changes: list[Change] = field(default_factory=list)
    up_to_date: bool = False  # models byte-identical and no BUMP asked: nothing to release
    forced: bool = False  # BUMP below the required part, released with FORCE=1
    unreadable: str | None = None  # why the baseline could not be compared (released with FORCE=1)
    asked: str | None = None  # what asked for a release that no change requires: "BUMP=major", "FORCE=1"
    first: str = FIRST_RELEASE  # the reason of a release with no baseline (see first_release_reason)
    skipped: str | None = None  # why the number is not the next one: used before (taken back, being released)

    @property
    def reasons(self) -> list[str]:
        """Why the version moves: the changes, causes first (the model bytes follow from them);
        with no change, what asked for the release; with no baseline, why there is none."""
        if self.unreadable:
            return [f"not compared with {self.baseline} (FORCE=1): {self.unreadable}"]
        if self.baseline is None:
            return [self.first]
        causes = self._causes()
        if self.required is None:
            return [f"{self._unchanged()}; {self.asked} requested" if self.asked else self._unchanged(), *causes]
        return causes

    def _causes(self) -> list[str]:
        """The changes that move the version, the data tag as the version labels tell it."""
        causes = with_data_tag([c for c in self.changes if c.group != "metrics"],
                               parse(self.baseline).local, parse(self.version).local)
        causes.sort(key=lambda c: (c.text.endswith("bytes changed"), CAUSE_ORDER.index(c.group)))
        return [c.text for c in causes]

    def _unchanged(self) -> str:
        return "only metrics changed" if self.changes else "no change"

    def release_notes(self) -> dict:
        """What the package records about its version number (make versions shows it)."""
        notes = {"bump": {"part": self.part, "kind": BUMP_KIND[self.part], "required": self.required,
                          "against": self.baseline, "reasons": self.reasons}}
        if self.forced:
            notes["bump_overridden"] = {"required": self.required, "used": self.part, "against": self.baseline}
        if self.unreadable:
            notes["comparison_skipped"] = {"against": self.baseline, "reason": self.unreadable}
        return notes

    def describe(self) -> str:
        """e.g. ``interface change against 1.1.2+titanic: input column 'cabin' added -> 1.2.0+titanic``"""
        if self.baseline is None or self.unreadable:
            return f"{self.reasons[0]} -> {self.version}"
        if self.required is None:
            asked = f"; {self.asked} requested ({BUMP_KIND[self.part]})" if self.asked else ""
            return "".join([f"{self._unchanged()} against {self.baseline}{asked}",
                            *(f"; {cause}" for cause in self._causes()), f" -> {self.version}"])
        shown = "; ".join(self.reasons[:4]) + (f"; and {len(self.reasons) - 4} more" if len(self.reasons) > 4 else "")
        chosen = "" if self.part == self.required else f" (BUMP={self.part}: {BUMP_KIND[self.part]})"
        return f"{BUMP_KIND[self.required]} change against {self.baseline}: {shown} -> {self.version}{chosen}"


def plan(client: IndexClient, recorded: str | None, bump: str | None, tag: str, force: bool,
         models_dir: Path = MODELS_DIR, allow_unchanged: bool = False) -> Plan:
    """The version to release the trained models in ``models_dir`` as.

    Numbering counts every version with a file on the index and every number the index has seen
    used (taken back, or uploaded by a release not sealed yet: a number is never reused); the
    comparison is with the highest complete version that is not yanked. ``allow_unchanged`` plans a
    patch for unchanged models instead of reporting them up to date (make version)."""
    files = client.files()
    served = sorted({f.version for f in files})  # yanked numbers included: never reused
    used = used_numbers.used(client)
    taken = sorted({*served, *used}, key=parse)
    yanked = {f.version for f in files if f.yanked is not None}
    baseline = highest(v for v in registry.complete_versions(client, files) if v not in yanked)
    asked = bump_part(bump) if bump else None
    skipped: list[str] = []

    def numbered(part: str) -> str:
        version = next_version(taken, recorded, part, tag)
        check_publishable(version, taken)
        line = used_numbers.skipped(next_version(served, recorded, part, tag), version, used)
        if line:
            skipped.append(line)
        return version

    if baseline is None:
        return Plan(numbered(asked or "patch"), asked or "patch", "patch", None,
                    first=first_release_reason(recorded, served), skipped=next(iter(skipped), None))
    try:
        published = registry.published(client, baseline, files).snapshot
    except UnreadableRelease as exc:
        if not force:
            raise PackageIndexError(f"cannot compare with {baseline}, the highest published version: "
                                    f"{exc.problem}; yank it (make yank VERSION={baseline} REASON=...) to compare "
                                    "with the version before it, or pass FORCE=1 to release without comparing") from None
        print(f"cannot compare with {baseline} ({exc.problem}): FORCE=1 releases without comparing")
        version = numbered(asked or "patch")
        return Plan(version, asked or "patch", None, baseline, unreadable=exc.problem, skipped=next(iter(skipped), None))
    local = registry.local_snapshot(models_dir)
    changes = diff(published, local)
    required = required_bump(changes)
    if asked is None and identical(published, local) and not (force or allow_unchanged):
        return Plan(baseline, "patch", None, baseline, changes, up_to_date=True)
    part = asked or required or "patch"
    forced = False
    if required and PART_RANK[part] < PART_RANK[required]:
        if not force:
            first = next(c.text for c in changes if c.group != "metrics")
            raise VersionError(f"BUMP={bump} is too small: {first}, {_a(BUMP_KIND[required])} change against "
                               f"{baseline}; use BUMP={required} ({BUMP_KIND[required]}) or higher, or leave BUMP "
                               "unset (FORCE=1 releases it anyway and records the override)")
        forced = True
    requested = f"BUMP={bump}" if bump else "FORCE=1" if force else None
    version = numbered(part)
    return Plan(version, part, required, baseline, changes, forced=forced, asked=requested,
                skipped=next(iter(skipped), None))


def first_release_reason(recorded: str | None, taken: list[str]) -> str:
    """Why there is nothing to compare with: what the index and the repository's record say.

    >>> first_release_reason("1.1.0", [])
    'first release of this clone'
    >>> first_release_reason("1.2.0+titanic", [])
    'first release on this index (this repository last released 1.2.0+titanic, which is not on it)'
    """
    if taken:
        held = "the one it holds is" if len(taken) == 1 else f"the {len(taken)} it holds are"
        return f"no version on this index to compare with: {held} yanked or incomplete"
    if recorded and recorded != INITIAL_VERSION:
        return f"first release on this index (this repository last released {recorded}, which is not on it)"
    return FIRST_RELEASE


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word
