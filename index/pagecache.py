"""``/simple/<project>/`` rendered once per change of the index folder, then served from memory.

Listing, parsing and hashing every file of a project on each request costs ~42 us a
file (263 ms at 6,000 files). A rendered page is kept with the signature of what it
was rendered from: the folders pypiserver lists (a file added, removed or renamed
changes its folder's mtime), each of the project's files (size, mtime, ctime, inode:
a file rewritten in place), the project's yanks and the generation of the index's version
records (index/numbers.py: a seal or a take-back changes what is served without changing the
folder, possibly in another worker process). A request whose signature differs
renders afresh, so any change is on the next page. The signature is taken before the
render: a change during a render leaves a page that the next request replaces.

File-system clocks are coarse (a tick of a few ms, a second on some file systems): two
changes within one tick leave the same mtime. As git does for its index, a page
rendered from anything changed within ``RACY_WINDOW_NS`` is served but not kept.

On Linux the folders are watched with inotify instead (``index/watch.py``): a request
then reads one event queue, whatever the number of files (the signatures above are
the fallback where no watch can be set up).
"""

from __future__ import annotations

import os
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

from index.watch import FolderWatch, WatchUnavailable

RACY_WINDOW_NS = 2_000_000_000
_RECORDS = "\x00records"  # beside the yanks of a kept page: no version holds a NUL

Stat = tuple[int, int, int, int]
Body = t.TypeVar("Body")  # what a render makes: a page, or the registry's list of releases


def _stat(path: str) -> Stat | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def listed_folders(roots: t.Iterable[Path]) -> tuple[str, ...]:
    """The folders pypiserver lists (its roots and their subfolders, hidden ones skipped)."""
    folders = []
    for root in roots:
        for path, subfolders, _ in os.walk(root):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            folders.append(path)
    return tuple(folders)


@dataclass(frozen=True)
class Signature:
    folders: tuple[tuple[str, Stat | None], ...]
    files: tuple[tuple[str, Stat | None], ...]
    yanked: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, folders: t.Iterable[str], files: t.Iterable[str], yanked: dict[str, str]) -> Signature:
        return cls(tuple((p, _stat(p)) for p in folders), tuple((p, _stat(p)) for p in files),
                   tuple(sorted(yanked.items())))

    def newest_ns(self) -> int:
        """The latest change (ctime: set by the kernel, never back-dated like an mtime can be)."""
        return max((s[2] for _, s in self.folders + self.files if s is not None), default=0)


@dataclass
class _Entry:
    signature: Signature | None  # None: kept under a folder watch, by generation
    generation: int | None
    yanked: tuple[tuple[str, str], ...]
    bodies: dict[str, t.Any] = field(default_factory=dict)  # by form: "html", "json", the registry's


class PageCache:
    """Rendered pages by project; ``page`` renders on a miss or a change and keeps what is safe to keep.

    With a folder watch (``index/watch.py``) a request checks one event queue instead of
    every file's signature, and a page is kept however recent the change it shows.
    """

    def __init__(self, roots: t.Iterable[Path], racy_window_ns: int = RACY_WINDOW_NS,
                 watch: FolderWatch | None = None) -> None:
        self._roots = tuple(roots)
        self._racy_window_ns = racy_window_ns
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._watch, self._watching, self._generation = watch, False, 0
        self._reading = False  # a request is taking the watch's events and has not yet moved the generation
        self._forgotten = 0  # how many times forget() was called

    def _current_generation(self) -> int | None:
        """A number that moves with every change of the folders; None without a working watch.

        A request that finds no event queued reads the generation without the lock: every download
        asks, and eight threads queueing on one lock around a system call cost more than the call.
        Events are taken only under the lock with ``_reading`` set until the generation has moved, so
        a request that peeks an empty queue because another is taking the events waits for it."""
        watch = self._watch
        if watch is not None and self._watching and not watch.pending() and not self._reading:
            return self._generation  # read after both checks: a generation moved meanwhile is seen
        with self._lock:
            if self._watch is None:
                return None
            self._reading = True
            try:
                changed, lost = self._watch.read()
                if changed or lost or not self._watching:
                    self._generation += 1
                    # Folders made since are watched from now on; their files are in the next render.
                    # A root that is missing (moved aside, being restored) is looked for on every
                    # request until it is back: nothing is kept meanwhile.
                    try:
                        self._watching = (all(os.path.isdir(root) for root in self._roots)
                                          and self._watch.add(listed_folders(self._roots)))
                    except WatchUnavailable:  # the per-user watch limit: signatures from here on
                        self._watch = None
                        return None
                return self._generation
            finally:
                self._reading = False

    def page(self, project: str, form: str, yanked: dict[str, str],
             render: t.Callable[[], tuple[list[str], Body | None]], records: int | None = None) -> Body | None:
        """The page ``form`` of ``project``; ``render`` returns (the files it listed, the body or None);
        ``records``: the version records' generation the page shows.

        None (no such project here) is not kept: pypiserver answers those."""
        generation = self._current_generation()
        forgotten = self._forgotten
        yanks = tuple(sorted(yanked.items())) + (() if records is None else ((_RECORDS, str(records)),))
        entry = self._entries.get(project)  # one dictionary read: no lock needed
        if entry is not None and form in entry.bodies and entry.yanked == yanks and entry.generation == generation:
            current = entry.signature
            if current is None or Signature.of((p for p, _ in current.folders), (p for p, _ in current.files),
                                               yanked) == current:
                return entry.bodies[form]
        if generation is not None:
            files, body = render()
            if body is not None:
                self._keep(project, form, body, _Entry(None, generation, yanks), forgotten)
            return body
        started = time.time_ns()
        folders = listed_folders(self._roots)
        before = Signature.of(folders, (), yanked)  # folders first: a file added from here on changes them
        files, body = render()
        signature = Signature(before.folders, Signature.of((), files, {}).files, before.yanked)
        if body is not None and signature.newest_ns() < started - self._racy_window_ns:
            self._keep(project, form, body, _Entry(signature, None, yanks), forgotten)
        return body

    def _keep(self, project: str, form: str, body: t.Any, fresh: _Entry, forgotten: int) -> None:
        with self._lock:
            if forgotten != self._forgotten:
                return
            kept = self._entries.get(project)
            if kept is None or (kept.signature, kept.generation, kept.yanked) != \
                    (fresh.signature, fresh.generation, fresh.yanked):
                kept = self._entries[project] = fresh
            kept.bodies[form] = body

    def forget(self) -> None:
        """Drop every page (an upload, a removal or a yank through this server).

        A render that began before is served to its request but not kept."""
        with self._lock:
            self._entries.clear()
            self._forgotten += 1
