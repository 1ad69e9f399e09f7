"""setuptools' build backend, writing each file into the wheel in blocks.

setuptools (80.x) writes wheels with the ``WheelFile`` of its vendored ``wheel``, whose
``write`` reads a file whole and compresses it in one call: building the package of a
1 GB model peaked at 3 GB of memory. ``StreamingWheelFile.write`` streams the file
through ``ZipFile.open`` and hashes it on the way. The archive is the same bytes: the
entry's header is made the same way, and zlib's output does not depend on how its input
is split (tests/integration/test_scale.py builds both ways and compares). The PEP 517
hooks are setuptools.build_meta's; a setuptools built differently keeps its own writer.
"""

from __future__ import annotations

import os
import stat
import sys
from zipfile import ZipFile, ZipInfo

from setuptools.build_meta import *  # noqa: F403  (the PEP 517 hooks)
from setuptools.command import bdist_wheel

BLOCK = 1 << 20

_Stock = getattr(bdist_wheel, "WheelFile", None)
# The helpers of the stock writer's own module: its times (SOURCE_DATE_EPOCH) and its
# RECORD encoding (base64 without padding).
_wheelfile = sys.modules.get(getattr(_Stock, "__module__", ""))
_zipinfo_datetime = getattr(_wheelfile, "get_zipinfo_datetime", None)
_urlsafe_b64encode = getattr(_wheelfile, "urlsafe_b64encode", None)

if _zipinfo_datetime and _urlsafe_b64encode and hasattr(_Stock, "_default_algorithm"):
    class StreamingWheelFile(_Stock):  # type: ignore[misc, valid-type]
        def write(self, filename: str, arcname: str | None = None, compress_type: int | None = None) -> None:
            status = os.stat(filename)
            entry = ZipInfo(arcname or filename, date_time=_zipinfo_datetime(status.st_mtime))
            entry.external_attr = (stat.S_IMODE(status.st_mode) | stat.S_IFMT(status.st_mode)) << 16
            entry.compress_type = compress_type or self.compression
            entry.file_size = status.st_size  # known up front, as writestr knows it: the same header
            digest = self._default_algorithm()
            with open(filename, "rb") as source, ZipFile.open(self, entry, "w") as target:
                while block := source.read(BLOCK):
                    digest.update(block)
                    target.write(block)
            if entry.filename != self.record_path:
                self._file_hashes[entry.filename] = (digest.name, _urlsafe_b64encode(digest.digest()).decode("ascii"))
                self._file_sizes[entry.filename] = status.st_size

    bdist_wheel.WheelFile = StreamingWheelFile
