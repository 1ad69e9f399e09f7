"""The MkDocs hook of mkdocs.yml: before each build (make docs, and each rebuild of make docs-serve)
it writes the generated reference into docs/generated/ from the code (pipeline/views/reference.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.views import reference  # noqa: E402

log = logging.getLogger("mkdocs.hooks.generated")


def on_pre_build(config, **kwargs) -> None:
    for name in reference.write(Path(config["docs_dir"]), REPO):
        log.info("generated docs/%s from the code", name)
