"""The data package's wheel: what the data is (its frame's facts), its Parquet file (pipeline/steps/frames.py,
written a row group at a time), the wheel written with zipfile (no build backend: it holds no code to
build), the file streamed in block by block with fixed times and modes, so the same frame and labels
give the same bytes on any machine and day (with the same pandas and pyarrow), and the bounded reading
of such a wheel back. pipeline/steps/data_package.py decides what a release publishes and pins.

Data packages published before the Parquet file hold the CSV file as it was read (``data.csv``,
whose ``sha256`` is the file's): they are read back the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from pipeline.config import (
    DATA_FILE_LIMIT, DATA_IMPORT_NAME, DATA_JSON_LIMIT, DATA_PACKAGE, DATA_REQUIRES, PACKAGE,
)
from pipeline.errors import DataError
from pipeline.package.own_package import store
from pipeline.steps.data_input import published_source

HASH_BLOCK, sha256_file = store.HASH_BLOCK, store.sha256_file

TEMPLATE = Path(__file__).with_name("templates") / "data_package_init.py"
DATA_MEMBER = "data.parquet"
DATA_MEMBERS = (DATA_MEMBER, "data.csv")  # the data file of a data package: now, and before Parquet
METADATA_MEMBER = "metadata.json"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
PIN_KEY = "package"  # metadata["data"]["package"] of every model: the data package it was trained on


def member(name: str) -> str:
    return f"{DATA_IMPORT_NAME}/{name}"


def wheel_name(version: str) -> str:
    return f"{DATA_IMPORT_NAME}-{version}-py3-none-any.whl"


def requirement(version: str) -> str:
    return f"{DATA_PACKAGE}=={version}"


def parse_requirement(text: str | None) -> str | None:
    """The version ``text`` pins of the data package (``mymodel-data==1.0.1+wine``); None when ``text``
    names no data package (a data tag, a path).

    >>> parse_requirement("mymodel-data==1.0.1+wine"), parse_requirement("wine"), parse_requirement("data.csv")
    ('1.0.1+wine', None, None)
    """
    if not text or "==" not in text:
        return None
    name, _, version = text.partition("==")
    if canonicalize_name(name.strip()) != DATA_PACKAGE:
        return None
    try:
        return str(Version(version.strip()))
    except InvalidVersion:
        raise DataError(f"{text!r} does not pin a version of {DATA_PACKAGE}; use e.g. {DATA_PACKAGE}==1.0.0+tag") from None


# --- what the data is --------------------------------------------------------------------------------------------

def describe(data, target: str, tag: str) -> dict:
    """metadata.json of ``data`` (a pipeline.steps.data.Data) without its file and version: the sha256 of
    the frame's canonical form (the models' data sha256), rows, each column's name and pandas type."""
    from pipeline.steps import frames  # pandas: only when a data package is written

    return {"name": DATA_PACKAGE, "file": DATA_MEMBER, "format": "parquet", "hash": frames.FORM.decode().strip(),
            "sha256": data.sha256, "rows": len(data.frame), "columns": frames.columns(data.frame),
            "source": published_source(data.source), "target": target, "tag": tag}


def write_file(data, facts: dict, folder: Path) -> tuple[Path, dict]:
    """The data file of ``facts`` (from ``describe``) in ``folder``, and the facts with its size and sha256."""
    from pipeline.steps import frames

    path = folder / DATA_MEMBER
    frames.write_parquet(data.frame, path)
    return path, {**facts, "size": path.stat().st_size, "file_sha256": sha256_file(path)}


def column_change(old: dict, new: dict) -> str | None:
    """Why ``new`` changes the columns of ``old`` (a minor bump), or None.

    >>> column_change({"columns": [{"name": "a", "type": "int64"}]}, {"columns": [{"name": "a", "type": "float64"}]})
    "column 'a' retyped int64 -> float64"
    """
    listed = old.get("columns") if isinstance(old.get("columns"), list) else []  # from the index: any shape
    before = {c["name"]: c.get("type") for c in listed if isinstance(c, dict) and isinstance(c.get("name"), str)}
    after = {c["name"]: c["type"] for c in new["columns"]}
    for name in after:
        if name not in before:
            return f"column {name!r} added"
    for name in before:
        if name not in after:
            return f"column {name!r} removed"
    for name, kind in after.items():
        if before[name] != kind:
            return f"column {name!r} retyped {before[name]} -> {kind}"
    return None


# --- the wheel ---------------------------------------------------------------------------------------------------

def build_wheel(path: Path, metadata: dict, out_dir: Path) -> Path:
    """``<import name>_data-<version>-py3-none-any.whl`` in ``out_dir``: the data file (``metadata["file"]``,
    whose sha256 is ``metadata["file_sha256"]``) streamed in, compressed."""
    version = metadata["version"]
    dist_info = f"{DATA_IMPORT_NAME}-{version}.dist-info"
    wheel = out_dir / wheel_name(version)
    record: list[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        def add(name: str, data: bytes) -> None:
            archive.writestr(_entry(name), data)
            record.append(f"{name},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}")

        add(member("__init__.py"), TEMPLATE.read_bytes())
        add(member(METADATA_MEMBER), (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode())
        entry = _entry(member(metadata["file"]))
        entry.file_size = metadata["size"]  # zipfile chooses ZIP64 for a large file from it
        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as source, archive.open(entry, "w") as target:
            for block in iter(lambda: source.read(HASH_BLOCK), b""):
                digest.update(block)
                size += len(block)
                target.write(block)
        if digest.hexdigest() != file_sha256(metadata):
            raise DataError(f"data file {path} changed while the data package was built; run make release again")
        record.append(f"{member(metadata['file'])},sha256={_b64(digest.digest())},{size}")
        add(f"{dist_info}/METADATA", core_metadata(metadata).encode())
        add(f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mymodel-pipeline\nRoot-Is-Purelib: true\n"
                                  b"Tag: py3-none-any\n")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(_entry(f"{dist_info}/RECORD"), "\n".join(record) + "\n")
    return wheel


def file_sha256(metadata: dict) -> str | None:
    """The sha256 of a data package's file: ``file_sha256``; before Parquet, the file was the data and
    ``sha256`` was its.

    >>> file_sha256({"sha256": "a", "file_sha256": "b"}), file_sha256({"sha256": "a", "file": "data.csv"})
    ('b', 'a')
    """
    return metadata.get("file_sha256", metadata.get("sha256"))


def data_member(metadata: dict) -> str | None:
    """The data file a data package's metadata.json names, if it is one a data package holds."""
    file = metadata.get("file", "data.csv")
    return file if file in DATA_MEMBERS else None


def _entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    return entry


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def core_metadata(metadata: dict) -> str:
    """METADATA: the name, version, what frame() needs and a card (the facts, in a fence nothing closes)."""
    facts = json.dumps(metadata, indent=2, sort_keys=True)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", facts)), default=0))
    columns = len(metadata["columns"])
    headers = [("Metadata-Version", "2.1"), ("Name", DATA_PACKAGE), ("Version", metadata["version"]),
               ("Summary", f"Training data of {PACKAGE}: {metadata['rows']} rows, {columns} columns, "
                           f"sha256 {metadata['sha256']}"),
               *(("Requires-Dist", r) for r in DATA_REQUIRES), ("Description-Content-Type", "text/markdown")]
    card = (f"# {DATA_PACKAGE} {metadata['version']}\n\nThe data {PACKAGE}'s models were trained on: "
            f"`import {DATA_IMPORT_NAME}; {DATA_IMPORT_NAME}.frame()` (also `path()`, `metadata()`).\n\n"
            f"{fence}json\n{facts}\n{fence}\n")
    return "".join(f"{k}: {v}\n" for k, v in headers) + "\n" + card


def card_line(data: dict) -> list[str]:
    """The model card's line about the data package the models pin (none when the data is not published)."""
    pinned = data.get(PIN_KEY)
    if not isinstance(pinned, dict):
        return []
    return [f"- Data package: `pip install {pinned['requirement']}` (wheel sha256 `{pinned['sha256']}`; "
            f"{pinned['rows']} rows, {pinned['columns']} columns, {pinned['size']} bytes)"]



# --- reading one back (bounded) ---------------------------------------------------------------------------------

def read_metadata(download) -> dict | None:
    try:
        with zipfile.ZipFile(download) as archive:
            info = archive.getinfo(member(METADATA_MEMBER))
            if info.file_size > DATA_JSON_LIMIT:
                return None
            with archive.open(info) as handle:
                document = json.loads(handle.read(DATA_JSON_LIMIT + 1))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RuntimeError, EOFError, NotImplementedError):
        return None
    return document if isinstance(document, dict) else None


def extract(download, path: Path, name: str, file: str = DATA_MEMBER) -> str:
    """The data file ``file`` of the data wheel ``download`` (named ``name``) written to ``path``; its sha256."""
    try:
        with zipfile.ZipFile(download) as archive:
            info = archive.getinfo(member(file))
            if info.file_size > DATA_FILE_LIMIT:
                raise DataError(f"{name}: its data file is {info.file_size} bytes, more than the {DATA_FILE_LIMIT} "
                                "this pipeline reads (DATA_FILE_LIMIT in pipeline/config.py); raise it to read the file")
            digest, size = hashlib.sha256(), 0
            with archive.open(info) as source, open(path, "wb") as target:
                for block in iter(lambda: source.read(HASH_BLOCK), b""):
                    size += len(block)
                    if size > info.file_size:
                        raise DataError(f"{name}: its data file holds more than the {info.file_size} bytes it declares")
                    digest.update(block)
                    target.write(block)
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
        raise DataError(f"{name} cannot be read as a data package ({exc}); check the index") from None
    return digest.hexdigest()
