"""What one published wheel says about its release, read from its JSON files and METADATA.

Never unpickled: ``<package>/models/manifest.json``, each ``<package>/models/<name>/metadata.json``
and the model card (the long description in ``*.dist-info/METADATA``) are read with
zipfile and json. A wheel's content is fixed by its sha256, so the facts are kept by
that sha256, in memory and as ``<sha256>.json`` in the state folder: after the first
render (or a restart) the page opens no wheel.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from dataclasses import asdict, dataclass, field
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

from index.metadata import keep

_log = logging.getLogger(__name__)  # unconfigured: warnings go to stderr, the index's server.log

MANIFEST_FILE = "manifest.json"
METADATA_FILE = "metadata.json"
MODEL_FILE = "model.joblib"


@dataclass(frozen=True)
class WheelFacts:
    manifest: dict = field(default_factory=dict)  # models/manifest.json; {} for a wheel not built by the pipeline
    models: dict[str, dict] = field(default_factory=dict)  # model name -> its metadata.json
    card: str = ""  # the long description (Markdown)
    summary: str = ""

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
    prefix = f"{package}/models/"
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            manifest = _json(archive, prefix + MANIFEST_FILE) if prefix + MANIFEST_FILE in names else {}
            models = {}
            for name in sorted(names):
                if name.startswith(prefix) and name.endswith("/" + METADATA_FILE) and name.count("/") == 3:
                    found = _json(archive, name)
                    if found:
                        models[name.removeprefix(prefix).split("/")[0]] = found
            metadata = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            message = BytesParser(policy=compat32).parsebytes(archive.read(metadata[0])) if len(metadata) == 1 else None
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError) as exc:
        _log.warning("index: cannot read %s for the registry page (%s)", wheel, exc)
        return WheelFacts()
    card, summary = "", ""
    if message is not None:
        card = message.get_payload() or message.get("Description") or ""
        summary = str(message.get("Summary") or "")
        if not isinstance(card, str):
            card = ""
    return WheelFacts(manifest, models, card, summary)


def _json(archive: zipfile.ZipFile, name: str) -> dict:
    try:
        found = json.loads(archive.read(name))
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class FactsCache:
    def __init__(self, folder: Path | None, package: str) -> None:
        self._folder = folder
        self._package = package
        self._known: dict[str, WheelFacts] = {}
        self._lock = threading.Lock()

    def of(self, wheel: Path, wheel_sha256: str) -> WheelFacts:
        if wheel_sha256 in self._known:
            return self._known[wheel_sha256]
        stored = self._folder / f"{wheel_sha256}.json" if self._folder else None
        facts = _read(stored) if stored else None
        if facts is None:
            facts = read_wheel(wheel, self._package)
            if stored is not None:
                keep(stored, json.dumps(asdict(facts), sort_keys=True).encode(), "the registry facts")
        with self._lock:
            self._known[wheel_sha256] = facts
        return facts


def _read(path: Path) -> WheelFacts | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return WheelFacts(**raw)
    except (OSError, ValueError, TypeError):
        return None  # not kept yet, or a damaged entry: read the wheel again
