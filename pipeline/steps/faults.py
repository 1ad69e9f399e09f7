"""Fault injection for the reliability tests (docs/reliability.md).

``RELEASE_FAULT=<point>`` makes the release fail at that point with the real
components around it: ``<step>`` (index, version, train, gate, build, upload,
verify, record) fails when that step's work is done (``upload``: after the
seal); ``sdist-upload``, ``wheel-upload`` and ``onnx-upload`` are right after
that file went up (the last one before the seal); ``after-first-upload``
fails between the sdist and the wheel upload; ``before-upload`` is after the
check that the version is free, before its first file goes up (where a racing
release slips in); ``record-commit`` is the moment the release lock is written
and the version is recorded. ``<point>:<how>`` does something else there:

- ``kill-index``: kills the index process (SIGKILL), so the next request meets a dead server;
- ``sigterm`` / ``sigint`` / ``sigkill``: the release process sends itself that signal
  (SIGKILL: dies on the spot, as under the OOM killer or a cancelled CI job);
- ``sigstop``: the release stops there until it gets SIGCONT (a test lets another one pass it);
- ``answer-500`` (at ``sdist-upload`` / ``wheel-upload``): the upload was stored but the
  answer is taken as HTTP 500, as when the server fails after writing the file.

Several faults are separated by commas (``before-upload:sigstop,after-first-upload``).
Unset, it costs one environment lookup per point.
"""

from __future__ import annotations

import json
import os
import signal

from pipeline.config import env
from pipeline.errors import PipelineError

SIGNALS = {"sigterm": signal.SIGTERM, "sigint": signal.SIGINT, "sigkill": signal.SIGKILL, "sigstop": signal.SIGSTOP}


class InjectedFault(PipelineError):
    """A failure the tests asked for."""


def point(name: str) -> None:
    wanted = next((fault for fault in (env("RELEASE_FAULT") or "").split(",") if fault.split(":", 1)[0] == name), None)
    if wanted is None:
        return
    how = wanted.partition(":")[2]
    if not how:
        raise InjectedFault(f"injected fault at {name} (RELEASE_FAULT={wanted}); unset RELEASE_FAULT to release")
    if how == "kill-index":
        from pipeline.config import index_settings

        record = json.loads((index_settings().state_dir / "server.json").read_text())
        os.kill(record["pid"], signal.SIGKILL)
    elif how in SIGNALS:
        os.kill(os.getpid(), SIGNALS[how])
    elif how == "answer-500":
        import requests

        response = requests.Response()
        response.status_code = 500
        raise requests.HTTPError("500 Server Error (injected)", response=response)
