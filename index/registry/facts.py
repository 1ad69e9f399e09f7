"""What one published wheel says about its release, read from its JSON files and METADATA.

Never unpickled: ``<package>/models/manifest.json``, each ``<package>/models/<name>/metadata.json``
and the model card (the long description in ``*.dist-info/METADATA``) are read with
zipfile and the package's validating reader (``<package>.published``). A wheel's content
is fixed by its sha256, so the facts are kept by that sha256, in memory and as
``<sha256>.json`` in the state folder: after the first render (or a restart) the page
opens no wheel. What is read is bounded (``JSON_LIMIT``, ``METADATA_LIMIT``,
``WHEEL_FACTS_LIMIT`` in index/settings.py): a wheel over a limit, or whose JSON files
are malformed, has no models, and its ``problem`` says why.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from dataclasses import asdict, dataclass, field
from email.parser import Parser
from email.policy import compat32
from pathlib import Path

from index.archive import Budget, TooLarge, open_zip, read_file
from index.metadata import keep
from index.settings import JSON_LIMIT, METADATA_LIMIT, WHEEL_FACTS_LIMIT
from index import owned_package

MalformedBuild = owned_package.module("errors").MalformedBuild
published = owned_package.module("published")
check_build, read_build, MANIFEST_FILE = published.check_build, published.read_build, published.MANIFEST_FILE

_log = logging.getLogger(__name__)  # unconfigured: warnings go to stderr, the index's server.log

MODEL_FILE = "model.joblib"
# Kept facts of another format are read from the wheel again. 2: the card decoded as UTF-8
# (format 1 kept every non-ASCII character of a card as U+FFFD), ``problem``; 4: ``built``.
FACTS_FORMAT = 4


@dataclass(frozen=True)
class WheelFacts:
    manifest: dict = field(default_factory=dict)  # models/manifest.json; {} for a wheel not built by the pipeline
    models: dict[str, dict] = field(default_factory=dict)  # model name -> its metadata.json
    card: str = ""  # the long description (Markdown)
    summary: str = ""
    problem: str = ""  # why the wheel cannot be read (malformed JSON, a member over the index's limits); "" when it can
    built: bool = False  # it holds <package>/models/manifest.json: a model package's wheel, readable or not

    @property
    def model_sha256(self) -> dict[str, str]:
        files = self.manifest.get("files", {}) if isinstance(self.manifest.get("files"), dict) else {}
        return {name: files.get(f"{name}/{MODEL_FILE}") for name in self.models}

    @property
    def release(self) -> dict:
        release = self.manifest.get("release")
        return release if isinstance(release, dict) else {}

    @property
    def requires(self) -> dict:
        requires = self.manifest.get("requires")
        return requires if isinstance(requires, dict) else {}

    @property
    def bump(self) -> dict:
        bump = self.release.get("bump")
        return bump if isinstance(bump, dict) else {}


def read_wheel(wheel: Path, package: str) -> WheelFacts:
    """The facts of ``wheel``; empty ones for a file that is no readable wheel (nothing raised)."""
    built = False
    try:
        with open_zip(Path(wheel)) as archive:
            names = set(archive.namelist())
            built = f"{package}/models/{MANIFEST_FILE}" in names
            budget = Budget(archive, WHEEL_FACTS_LIMIT)
            manifest, models = read_build(names, lambda name: budget.read(name, JSON_LIMIT), package)
            metadata = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            # Core metadata is UTF-8 (a model card has "…" and the like); read as text, not as ASCII bytes.
            text = budget.read(metadata[0], METADATA_LIMIT).decode("utf-8", "replace") if len(metadata) == 1 else None
            message = Parser(policy=compat32).parsestr(text) if text is not None else None
    except (TooLarge, MalformedBuild) as exc:
        _log.warning("index: %s cannot be read for the registry page (%s)", wheel, exc)
        return WheelFacts(problem=str(exc), built=built)
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, EOFError, NotImplementedError) as exc:
        _log.warning("index: cannot read %s for the registry page (%s)", wheel, exc)
        return WheelFacts()
    card, summary = "", ""
    if message is not None:
        card = message.get_payload() or message.get("Description") or ""
        summary = str(message.get("Summary") or "")
        if not isinstance(card, str):
            card = ""
    return WheelFacts(manifest, models, card, summary, built=built)


class FactsCache:
    """Facts by (import name, wheel sha256): the same bytes uploaded under another package's
    name are read as that package (and cannot stand in for the other's facts)."""

    def __init__(self, folder: Path | None, package: str) -> None:
        self._folder = folder
        self._package = package
        self._known: dict[tuple[str, str], WheelFacts] = {}
        self._lock = threading.Lock()

    def of(self, wheel: Path, wheel_sha256: str, package: str | None = None) -> WheelFacts:
        """``package``: the import name the wheel is read as (an identifier, see releases.import_name);
        default: the index's own package."""
        package = package or self._package
        key = (package, wheel_sha256)
        if key in self._known:
            return self._known[key]
        name = f"{wheel_sha256}.json" if package == self._package else f"{wheel_sha256}.{package}.json"
        stored = self._folder / name if self._folder else None
        facts = _read(stored) if stored else None
        if facts is None:
            facts = read_wheel(wheel, package)
            if stored is not None:
                kept = {"format": FACTS_FORMAT, **asdict(facts)}
                keep(stored, json.dumps(kept, sort_keys=True).encode(), "the registry facts")
        with self._lock:
            self._known[key] = facts
        return facts


def _read(path: Path) -> WheelFacts | None:
    try:
        kept = read_file(path, 2 * WHEEL_FACTS_LIMIT)  # larger (escapes): read the wheel again
        if kept is None:
            return None
        raw = json.loads(kept.decode("utf-8"))
        if raw.pop("format", 1) != FACTS_FORMAT:
            return None
        facts = WheelFacts(**raw)
        check_build(facts.manifest, facts.models)  # kept by an earlier reader, which checked less
        return facts
    except (ValueError, TypeError, AttributeError):
        return None  # not kept yet, or a damaged entry: read the wheel again
