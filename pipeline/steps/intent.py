"""What a release is about to put on the index, written down before each upload.

A release can die anywhere (SIGKILL, OOM, a CI runner cancelled): the intent file in
its staging folder says which files it was uploading and their sha256, so the next
release can tell its own files on the index from anybody else's and take back a
version it left half-published, or finish recording one it had fully published.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

INTENT_FILE = "intent.json"


@dataclass
class Intent:
    folder: Path
    version: str
    files: dict[str, str]  # file name -> sha256, in upload order (the sdist first)
    started: list[str] = field(default_factory=list)  # uploads begun (the index may hold them)
    accepted: list[str] = field(default_factory=list)  # uploads the index answered with success
    refused: list[str] = field(default_factory=list)  # uploads the index refused: that file is somebody else's

    @property
    def path(self) -> Path:
        return self.folder / INTENT_FILE

    @property
    def sdist(self) -> str:
        return next(iter(self.files))

    def save(self) -> None:
        """Written to a temporary file, flushed to disk and renamed: never half a file."""
        document = {"version": self.version, "files": self.files, "started": self.started,
                    "accepted": self.accepted, "refused": self.refused}
        temporary = self.path.with_name(f".{INTENT_FILE}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def starting(self, name: str) -> None:
        self.started.append(name)
        self.save()

    def accept(self, name: str) -> None:
        self.accepted.append(name)
        self.save()

    def refuse(self, name: str) -> None:
        self.refused.append(name)
        self.save()

    def owned(self, served: dict[str, str | None]) -> list[str]:
        """Our files among those the index serves (name -> sha256).

        Accepted uploads are ours; refused ones are not, even with our bytes (a racing clone
        at the same commit builds the same files). An upload that began but got no answer
        (the run died, the server answered 5xx) is ours if the index serves it with our sha256."""
        unanswered = [n for n in self.started if n not in self.accepted and n not in self.refused]
        return [name for name, digest in self.files.items()
                if name in served and (name in self.accepted or (name in unanswered and served[name] == digest))]

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path) -> Intent | None:
        try:
            raw = json.loads((folder / INTENT_FILE).read_text(encoding="utf-8"))
            return cls(folder, raw["version"], dict(raw["files"]), list(raw["started"]), list(raw["accepted"]),
                       list(raw["refused"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no upload began, or a file this code did not write: nothing to recover
