"""A progress bar for the transfer of a large file, on a terminal only (quiet in CI and logs)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import IO

LARGE_FILE = 50 * 2**20  # smaller transfers take a moment: their step's one-line timing is enough


def shown(size: int | None, stream: IO[str] | None = None) -> bool:
    """Is a bar worth drawing for ``size`` bytes on ``stream`` (default: stderr)?

    >>> import io
    >>> shown(2**30, io.StringIO()), shown(None, io.StringIO())
    (False, False)
    """
    stream = sys.stderr if stream is None else stream
    return size is not None and size >= LARGE_FILE and stream.isatty()


@contextlib.contextmanager
def transfer(label: str, size: int | None) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` after each block of ``n`` bytes; a rich bar on stderr when ``shown``."""
    if not shown(size):
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=size)
        yield lambda n: bar.advance(task, n)
