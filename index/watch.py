"""Changes to the index folders, from the kernel (Linux inotify), in one system call per request.

The kernel queues an event before the call that changed a file returns, so a change
made before a request began is in the queue when the request reads it. Where inotify
is missing (another OS, the per-user instance limit reached), ``FolderWatch.open``
returns None and the page cache compares file signatures instead.
"""

from __future__ import annotations

import ctypes
import os
import typing as t

# Anything that can change a listing or a file's bytes; IN_Q_OVERFLOW always arrives.
_EVENTS = (0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800)
# MODIFY ATTRIB CLOSE_WRITE MOVED_FROM MOVED_TO CREATE DELETE DELETE_SELF MOVE_SELF


class FolderWatch:
    def __init__(self, libc: t.Any, descriptor: int) -> None:
        self._libc, self._descriptor = libc, descriptor

    @classmethod
    def open(cls) -> FolderWatch | None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # this process's own symbols: libc
            descriptor = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(libc, descriptor) if descriptor >= 0 else None

    def add(self, folders: t.Iterable[str]) -> bool:
        """Watch ``folders`` (again: a folder already watched keeps its watch); False if one cannot be."""
        return all(self._libc.inotify_add_watch(self._descriptor, os.fsencode(f), _EVENTS) >= 0 for f in folders)

    def changed(self) -> bool:
        """Did anything change since the last call? Reads (and so clears) the queued events."""
        changed = False
        while True:
            try:
                changed = bool(os.read(self._descriptor, 65536)) or changed
            except BlockingIOError:
                return changed
