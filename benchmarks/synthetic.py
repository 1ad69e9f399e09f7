"""A synthetic model-package project: N versions of random-byte files, plus one real installable wheel."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import zipfile
from pathlib import Path

from pipeline.package.package_name import IMPORT_NAME, PACKAGE

# It stands in for the model package ([package] name in dataset.toml): its name, and the import name
# that spells it in file names and names its folder, as setuptools writes them.
PROJECT, MODULE = PACKAGE, IMPORT_NAME
_CHUNK = 1 << 20


def version(k: int) -> str:
    return f"1.0.{k}+synthetic"


def wheel_name(ver: str) -> str:
    return f"{MODULE}-{ver}-py3-none-any.whl"


def sdist_name(ver: str) -> str:
    return f"{MODULE}-{ver}.tar.gz"


def make_project(root: Path, versions: int, size_bytes: int, seed: int = 0) -> str:
    """Write ``versions`` x (wheel, sdist) of ``size_bytes`` random bytes each into ``root``,
    then a real wheel of version 1.0.{versions+1}+synthetic; return that version.

    Each file is distinct (its own random header and its own offset into a random pool),
    so no two files share a digest. The fillers are not valid archives: listing latency
    does not read them as archives, and installs pin the real version.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool = memoryview(os.urandom(size_bytes + _CHUNK))
    for k in range(1, versions + 1):
        for name in (wheel_name(version(k)), sdist_name(version(k))):
            header = name.encode() + b"\n" + rng.randbytes(32)
            body = max(size_bytes - len(header), 0)
            offset = rng.randrange(0, len(pool) - body + 1)
            with open(root / name, "wb") as handle:
                handle.write(header[:size_bytes])
                handle.write(pool[offset:offset + body])
    real = version(versions + 1)
    build_wheel(root, real)
    return real


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(directory: Path, ver: str, payload_bytes: int = 0) -> Path:
    """A minimal valid pure-Python wheel (no dependencies) that pip and uv install; with
    ``payload_bytes``, it also holds that many random bytes (stored, not deflated) as a model would."""
    dist_info = f"{MODULE}-{ver}.dist-info"
    files = {
        f"{MODULE}/__init__.py": f'"""Synthetic benchmark package."""\n__version__ = "{ver}"\n'.encode(),
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {ver}\n"
                                  "Summary: synthetic package for make bench\n").encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if payload_bytes:
        files[f"{MODULE}/models/weights.bin"] = os.urandom(payload_bytes)
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / wheel_name(ver)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".bin") else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def titanic_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """``rows`` Titanic passengers resampled from the offline copy, ages and fares jittered, as CSV."""
    import numpy as np

    from pipeline.config import load_dataset_config
    from pipeline.steps.data import load_dataset

    frame = load_dataset(load_dataset_config()).frame
    rng = np.random.default_rng(seed)
    big = frame.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    for column, scale in (("age", 2.0), ("fare", 1.0)):
        big[column] = (big[column] + rng.normal(0, scale, rows)).clip(lower=0).round(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    big.to_csv(path, index=False)
    return path
