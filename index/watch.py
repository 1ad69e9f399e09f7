"""Changes to the index folders, from the kernel (Linux inotify), in one system call per request.

The kernel queues an event before the call that changed a file returns, so a change
made before a request began is in the queue when the request reads it. Where inotify
is missing (another OS, the per-user instance limit reached), ``FolderWatch.open``
returns None and the page cache compares file signatures instead.

A watch follows a folder, not its path: when a watched folder is deleted, moved
away or replaced (a restore from backup), ``read`` says so and the page cache
watches the paths again, including a packages folder that is missing for a while.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import typing as t

# Anything that can change a listing or a file's bytes; IN_Q_OVERFLOW and IN_IGNORED always arrive.
_EVENTS = (0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800)
# MODIFY ATTRIB CLOSE_WRITE MOVED_FROM MOVED_TO CREATE DELETE DELETE_SELF MOVE_SELF
_MOVE_SELF = 0x800
# The folder behind a watch is gone from its path (DELETE_SELF, MOVE_SELF, IGNORED: the
# watch was removed, e.g. its folder deleted or its file system unmounted) or events
# were lost (Q_OVERFLOW): what is watched must be set up again.
_LOST = 0x400 | 0x800 | 0x8000 | 0x4000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name
_MISSING = (errno.ENOENT, errno.ENOTDIR)


class WatchUnavailable(Exception):
    """The kernel refuses more watches (the per-user limit): compare signatures instead."""


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
        """Watch ``folders`` (again: a folder already watched keeps its watch). False if one is gone
        by now (watch again later); WatchUnavailable if the kernel refuses a watch."""
        complete = True
        for folder in folders:
            if self._libc.inotify_add_watch(self._descriptor, os.fsencode(folder), _EVENTS) < 0:
                if ctypes.get_errno() not in _MISSING:
                    raise WatchUnavailable(folder)
                complete = False
        return complete

    def pending(self) -> bool:
        """Are events queued? Reads nothing (``read`` takes them)."""
        poller = select.poll()  # one per call: a poll object must not be used by two threads at once
        poller.register(self._descriptor, select.POLLIN)
        return bool(poller.poll(0))

    def read(self) -> tuple[bool, bool]:
        """(did anything change, is a watched folder gone from its path) since the last call.
        Reads, and so clears, the queued events."""
        changed = lost = False
        while True:
            try:
                events = os.read(self._descriptor, 65536)
            except BlockingIOError:
                return changed, lost
            changed = changed or bool(events)
            offset = 0
            while offset + _EVENT.size <= len(events):
                descriptor, mask, _, length = _EVENT.unpack_from(events, offset)
                offset += _EVENT.size + length
                lost = lost or bool(mask & _LOST)
                if mask & _MOVE_SELF:  # the folder now lives elsewhere: not what the index serves
                    self._libc.inotify_rm_watch(self._descriptor, descriptor)
