"""Members of an uploaded archive, read with a bound: a wheel is hostile input.

A zip member's declared size can lie, and a few hundred KB of it can inflate to GBs
(a zip bomb); an entry in the list of files costs more memory as an object than on
disk. The list is checked before zipfile reads it; a member is refused when it
declares more than its limit, and otherwise read as a stream that stops one byte
past the limit: the index never holds more than the limit of any member, whatever
the archive says.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from index.settings import ARCHIVE_DIRECTORY_LIMIT, ARCHIVE_ENTRIES_LIMIT


class TooLarge(Exception):
    """A member (or several together) larger than the index reads; the message says which and the limit."""


def open_zip(path: Path) -> zipfile.ZipFile:
    """``path`` opened as a zip, once its central directory (which zipfile reads whole, an
    object per entry) is known to be within ARCHIVE_ENTRIES_LIMIT and ARCHIVE_DIRECTORY_LIMIT:
    TooLarge otherwise; BadZipFile for a file that is no zip."""
    with open(path, "rb") as raw:
        end = zipfile._EndRecData(raw)  # the end-of-central-directory record, zip64 included (zipfile's own)
    if end is None:
        raise zipfile.BadZipFile(f"{path.name} is not a zip file")
    entries, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if entries > ARCHIVE_ENTRIES_LIMIT:
        raise TooLarge(f"the archive has {entries} files, more than the {ARCHIVE_ENTRIES_LIMIT} the index reads")
    if directory > ARCHIVE_DIRECTORY_LIMIT:
        raise TooLarge(f"the archive's list of files is {size(directory)}, more than the {size(ARCHIVE_DIRECTORY_LIMIT)} "
                       "the index reads")
    return zipfile.ZipFile(path)


def size(count: int) -> str:
    """
    >>> size(4 * 2**20), size(800_000_000), size(512)
    ('4 MiB', '762 MiB', '512 bytes')
    """
    return f"{count >> 20} MiB" if count >= 2**20 else f"{count} bytes"


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """The bytes of ``name``; TooLarge past ``limit`` (KeyError when absent, BadZipFile when damaged)."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise TooLarge(f"{name} is {size(info.file_size)}, more than the {size(limit)} the index reads")
    with archive.open(info) as member:
        content = member.read(limit + 1)
    if len(content) > limit:  # it declared less than it holds
        raise TooLarge(f"{name} is more than the {size(limit)} the index reads")
    return content


class Budget:
    """Reads from one archive that together stay within ``total`` bytes."""

    def __init__(self, archive: zipfile.ZipFile, total: int) -> None:
        self._archive, self._total, self._left = archive, total, total

    def read(self, name: str, limit: int) -> bytes:
        if limit > self._left:
            try:
                content = read_member(self._archive, name, self._left)
            except TooLarge:
                raise TooLarge(f"the files the index reads from this wheel come to more than "
                               f"{size(self._total)} (at {name})") from None
        else:
            content = read_member(self._archive, name, limit)
        self._left -= len(content)
        return content


def read_file(path: Path, limit: int) -> bytes | None:
    """A file the index keeps, if it exists and holds at most ``limit`` bytes (never read past that)."""
    try:
        with open(path, "rb") as kept:
            content = kept.read(limit + 1)
    except OSError:
        return None
    return content if len(content) <= limit else None
