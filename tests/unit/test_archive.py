"""Bounded reads from uploaded archives: a zip bomb never gets past a limit into memory."""

from __future__ import annotations

import struct
import time
import zipfile
from pathlib import Path

import pytest

from index.archive import Budget, TooLarge, open_zip, read_member
from index.metadata import extract, upload_problem

INFLATED = 64 * 2**20  # a member's real size: ~64 KB on disk


def archive_with(path: Path, members: dict[str, int]) -> Path:
    """A zip of members of the given inflated sizes (zeros, highly compressible), written as streams."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, size in members.items():
            with archive.open(name, "w", force_zip64=True) as out:
                for _ in range(size // 2**20):
                    out.write(bytes(2**20))
                out.write(bytes(size % 2**20))
    return path


def lie_about_sizes(path: Path, declared: int) -> None:
    """Make the local and central headers of the archive's one member declare ``declared`` bytes."""
    data = bytearray(path.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, declared)
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))


def test_a_member_over_its_limit_is_refused_from_its_declared_size_without_inflating(tmp_path):
    path = archive_with(tmp_path / "bomb.zip", {"x/METADATA": INFLATED})
    assert path.stat().st_size < 2**20
    with zipfile.ZipFile(path) as archive:
        started = time.monotonic()
        with pytest.raises(TooLarge, match=r"^x/METADATA is 64 MiB, more than the 1 MiB the index reads$"):
            read_member(archive, "x/METADATA", 2**20)
        assert time.monotonic() - started < 0.1
        assert len(read_member(archive, "x/METADATA", INFLATED)) == INFLATED


def test_a_member_that_declares_less_than_it_holds_is_never_read_past_the_declared_size(tmp_path):
    path = archive_with(tmp_path / "liar.zip", {"x/METADATA": INFLATED})
    lie_about_sizes(path, 100)
    with zipfile.ZipFile(path) as archive, pytest.raises(zipfile.BadZipFile):  # its CRC no longer matches
        read_member(archive, "x/METADATA", 2**20)


def test_a_budget_bounds_several_members_together(tmp_path):
    path = archive_with(tmp_path / "many.zip", {f"m/{n}.json": 3 * 2**20 for n in range(4)})
    with zipfile.ZipFile(path) as archive:
        budget = Budget(archive, 10 * 2**20)
        for n in range(3):
            assert len(budget.read(f"m/{n}.json", 4 * 2**20)) == 3 * 2**20
        with pytest.raises(TooLarge, match=r"come to more than 10 MiB \(at m/3.json\)"):
            budget.read("m/3.json", 4 * 2**20)


def test_a_wheel_whose_metadata_is_over_the_limit_has_none_and_is_refused_at_upload(tmp_path):
    wheel = archive_with(tmp_path / "mymodel-1.0.0-py3-none-any.whl",
                         {"mymodel/__init__.py": 10, "mymodel-1.0.0.dist-info/METADATA": INFLATED})
    assert extract(wheel) is None
    assert upload_problem(wheel, wheel.name) == (
        "mymodel-1.0.0-py3-none-any.whl refused: mymodel-1.0.0.dist-info/METADATA is 64 MiB, more than the "
        '4 MiB the index reads; see "Bounded reads of uploads" in docs/running-the-index.md')
    small = archive_with(tmp_path / "mymodel-1.0.1-py3-none-any.whl", {"mymodel-1.0.1.dist-info/METADATA": 1000})
    assert extract(small) == bytes(1000) and upload_problem(small, small.name) is None
    assert upload_problem(wheel, "mymodel-1.0.0.tar.gz") is None  # only wheels carry core metadata to serve


def test_a_wheel_listing_too_many_files_is_not_opened(tmp_path):
    """zipfile reads the whole list of files, an object per entry: a 2.7 MB wheel of 30,000 empty
    files costs 15 MB to open (measured with tracemalloc), a 1 GB one GBs."""
    wheel = tmp_path / "mymodel-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mymodel-1.0.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: mymodel\n")
        for n in range(30_000):
            archive.writestr(f"f/{n}", b"")
    with pytest.raises(TooLarge, match=r"^the archive has 30001 files, more than the 10000 the index reads$"):
        open_zip(wheel)
    assert extract(wheel) is None and "30001 files" in upload_problem(wheel, wheel.name)
    long_names = tmp_path / "long-names.whl"
    with zipfile.ZipFile(long_names, "w") as archive:  # few files, but a large list of them
        for n in range(100):
            archive.writestr(f"{n:03}" + "x" * 60_000, b"")
    with pytest.raises(TooLarge, match=r"^the archive's list of files is 5 MiB, more than the 4 MiB the index reads$"):
        open_zip(long_names)
    (tmp_path / "not-a-zip.whl").write_bytes(b"PK" * 10)
    with pytest.raises(zipfile.BadZipFile):
        open_zip(tmp_path / "not-a-zip.whl")
