"""The page cache with real files: a page is rendered once, and again after any change to what it lists."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from index.pagecache import PageCache
from index.watch import FolderWatch

WINDOW_NS = 50_000_000  # well above this machine's file-system clock tick, so the test stays quick


class Renders:
    """A render of the folder's files (name and content), counting its calls."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.count = folder, 0

    def __call__(self) -> tuple[list[str], str | None]:
        self.count += 1
        files = sorted(self.folder.glob("*.whl"))
        return [str(f) for f in files], ",".join(f"{f.name}={f.read_bytes().decode()}" for f in files) or None


@pytest.fixture(params=["signatures", "inotify"])
def make_cache(request):
    """A cache comparing file signatures, or one reading a folder watch (where the kernel has inotify)."""
    watch = FolderWatch.open() if request.param == "inotify" else None
    if request.param == "inotify" and watch is None:
        pytest.fail("inotify is not available on this machine")
    return lambda folder: PageCache([folder], WINDOW_NS, watch)


def settle() -> None:
    time.sleep(WINDOW_NS * 2 / 1e9)  # what changed is now older than the racy window


def test_a_page_is_rendered_once_per_change_of_its_files(tmp_path, make_cache):
    cache, render = make_cache(tmp_path), Renders(tmp_path)
    a = tmp_path / "a.whl"
    a.write_text("1")
    settle()
    assert cache.page("p", "html", {}, render) == "a.whl=1"
    assert cache.page("p", "html", {}, render) == "a.whl=1" and render.count == 1  # from memory
    assert cache.page("p", "json", {}, render) == "a.whl=1" and render.count == 2  # each form rendered once
    (tmp_path / "b.whl").write_text("2")  # added by hand
    assert cache.page("p", "html", {}, render) == "a.whl=1,b.whl=2"
    settle()
    cache.page("p", "html", {}, render)
    stat = a.stat()
    a.write_text("3")  # rewritten in place, same size, old mtime: only the ctime moves
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.page("p", "html", {}, render) == "a.whl=3,b.whl=2"
    settle()
    cache.page("p", "html", {}, render)
    a.unlink()
    assert cache.page("p", "html", {}, render) == "b.whl=2"
    settle()
    cache.page("p", "html", {}, render)
    count = render.count
    assert cache.page("p", "html", {"1.0": "broken"}, render) and render.count == count + 1  # a yank


def test_a_page_rendered_within_the_racy_window_is_not_kept(tmp_path):
    cache, render = PageCache([tmp_path], WINDOW_NS), Renders(tmp_path)
    (tmp_path / "a.whl").write_text("1")
    cache.page("p", "html", {}, render)
    cache.page("p", "html", {}, render)
    assert render.count == 2  # a change in the same clock tick would leave the same mtime: not trusted yet
    settle()
    cache.page("p", "html", {}, render)
    cache.page("p", "html", {}, render)
    assert render.count == 3


def test_a_file_in_a_new_subfolder_shows_and_a_missing_project_is_not_kept(tmp_path, make_cache):
    cache = make_cache(tmp_path)
    sub = tmp_path / "sub"
    sub.mkdir()
    settle()
    render = Renders(sub)
    assert cache.page("p", "html", {}, render) is None
    assert cache.page("p", "html", {}, render) is None and render.count == 2
    (sub / "a.whl").write_text("1")
    assert cache.page("p", "html", {}, render) == "a.whl=1"


def test_a_watched_folder_keeps_a_page_rendered_right_after_a_change(tmp_path):
    cache, render = PageCache([tmp_path], WINDOW_NS, FolderWatch.open()), Renders(tmp_path)
    (tmp_path / "a.whl").write_text("1")
    cache.page("p", "html", {}, render)
    cache.page("p", "html", {}, render)
    assert render.count == 1  # events, not timestamps: no racy window
    sub = tmp_path / "sub"
    sub.mkdir()
    cache.page("p", "html", {}, render)
    (sub / "b.whl").write_text("2")  # in a folder made after the watch was set up
    render.folder = sub
    assert cache.page("p", "html", {}, render) == "b.whl=2"


def test_a_packages_folder_moved_aside_and_recreated_is_watched_again(tmp_path):
    """A request while the folder is missing (a restore from backup) used to leave nothing
    watched: files added or removed later never showed until a restart."""
    root = tmp_path / "packages"
    root.mkdir()
    cache, render = PageCache([root], WINDOW_NS, FolderWatch.open()), Renders(root)
    (root / "a.whl").write_text("1")
    assert cache.page("p", "html", {}, render) == "a.whl=1"
    root.rename(tmp_path / "packages.old")
    assert cache.page("p", "html", {}, render) is None  # asked while the folder is missing
    root.mkdir()
    assert cache.page("p", "html", {}, render) is None
    (root / "b.whl").write_text("2")
    assert cache.page("p", "html", {}, render) == "b.whl=2"
    assert cache.page("p", "html", {}, render) == "b.whl=2"  # kept again
    count = render.count
    (root / "c.whl").write_text("3")  # added by hand
    assert cache.page("p", "html", {}, render) == "b.whl=2,c.whl=3" and render.count == count + 1
    (root / "b.whl").unlink()
    assert cache.page("p", "html", {}, render) == "c.whl=3"
    (tmp_path / "packages.old" / "z.whl").write_text("moved away")  # no longer served: no render for it
    count = render.count
    assert cache.page("p", "html", {}, render) == "c.whl=3" and render.count == count


def test_a_packages_folder_replaced_between_two_requests_is_watched_again(tmp_path):
    root = tmp_path / "packages"
    root.mkdir()
    cache, render = PageCache([root], WINDOW_NS, FolderWatch.open()), Renders(root)
    (root / "a.whl").write_text("1")
    assert cache.page("p", "html", {}, render) == "a.whl=1"
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "b.whl").write_text("2")
    root.rename(tmp_path / "packages.old")
    restored.rename(root)  # the backup put in place, no request in between
    assert cache.page("p", "html", {}, render) == "b.whl=2"
    (root / "c.whl").write_text("3")
    assert cache.page("p", "html", {}, render) == "b.whl=2,c.whl=3"
    for child in list(root.iterdir()):
        child.unlink()
    root.rmdir()  # deleted outright, then made again
    root.mkdir()
    (root / "d.whl").write_text("4")
    assert cache.page("p", "html", {}, render) == "d.whl=4"
    (root / "e.whl").write_text("5")
    assert cache.page("p", "html", {}, render) == "d.whl=4,e.whl=5"


def test_forget_also_drops_a_page_whose_render_began_before_it(tmp_path, make_cache):
    cache = make_cache(tmp_path)
    (tmp_path / "a.whl").write_text("1")
    settle()
    stale = lambda: ([str(tmp_path / "a.whl")], "stale")  # noqa: E731 (rendered before the change)

    def render_then_forget() -> tuple[list[str], str]:
        files, body = stale()
        cache.forget()  # the upload through the server lands while this render runs
        return files, body

    assert cache.page("p", "html", {}, render_then_forget) == "stale"
    assert cache.page("p", "html", {}, Renders(tmp_path)) == "a.whl=1"


def test_with_a_watch_every_request_begun_after_a_change_sees_it_however_many_ask_at_once(tmp_path):
    """Requests that find no event queued skip the lock (index/pagecache.py): one of many threads taking the
    events must not let another serve the page from before the change."""
    import threading

    cache, render = PageCache([tmp_path], WINDOW_NS, FolderWatch.open()), Renders(tmp_path)
    a = tmp_path / "a.whl"
    for change in range(40):
        a.write_text(str(change))
        seen: list[str] = []
        start = threading.Barrier(8)

        def ask() -> None:
            start.wait()
            seen.append(cache.page("p", "html", {}, render))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [f"a.whl={change}"] * 8, (change, seen)
    assert render.count < 40 * 8  # kept between changes
