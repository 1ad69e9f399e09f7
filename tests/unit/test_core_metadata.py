"""Core metadata extraction: once per wheel sha256, kept on disk, nothing for a broken wheel."""

import zipfile

from index.metadata import MetadataCache


def wheel(path, metadata: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/__init__.py", "")
        archive.writestr("m-1.0.dist-info/METADATA", metadata)
        archive.writestr("m-1.0.dist-info/licenses/METADATA", b"not this one")
    return path


def test_metadata_is_extracted_once_and_read_back_after_a_restart(tmp_path):
    built = wheel(tmp_path / "m-1.0-py3-none-any.whl", b"Metadata-Version: 2.1\nName: m\nRequires-Python: >=3.11\n")
    first = MetadataCache(tmp_path / "cache").of(built, "ab" * 32)
    assert first.content.startswith(b"Metadata-Version: 2.1") and first.requires_python == ">=3.11"
    built.unlink()  # a new cache (a restarted index) reads the stored copy, not the wheel
    assert MetadataCache(tmp_path / "cache").of(built, "ab" * 32) == first
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{'ab' * 32}.metadata"]


def test_a_file_that_is_no_wheel_has_no_metadata(tmp_path):
    broken = tmp_path / "m-1.0-py3-none-any.whl"
    broken.write_bytes(b"x")
    assert MetadataCache(tmp_path / "cache").of(broken, "cd" * 32) is None
    assert not (tmp_path / "cache").exists()
