"""Fault injection for the reliability tests (docs/reliability.md).

``RELEASE_FAULT=<point>`` makes the release fail at that point with the real
components around it: ``<step>`` (index, version, train, gate, build, upload,
verify, record) fails when that step's work is done; ``after-first-upload``
fails between the sdist and the wheel upload; ``after-first-upload:kill-index``
kills the index process (SIGKILL) there instead, so the wheel upload meets a
dead server. Unset, it costs one environment lookup per step.
"""

from __future__ import annotations

import json
import os
import signal

from pipeline.config import env
from pipeline.errors import PipelineError


class InjectedFault(PipelineError):
    """A failure the tests asked for."""


def point(name: str) -> None:
    wanted = env("RELEASE_FAULT")
    if wanted == name:
        raise InjectedFault(f"injected fault at {name} (RELEASE_FAULT={wanted}); unset RELEASE_FAULT to release")
    if wanted == f"{name}:kill-index":
        from pipeline.config import index_settings

        record = json.loads((index_settings().state_dir / "server.json").read_text())
        os.kill(record["pid"], signal.SIGKILL)
