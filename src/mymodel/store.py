"""The packaged files: listing, metadata and integrity-checked model bytes.

Two kinds of copy are read. An installed distribution (a ``<name>-*.dist-info``
folder beside the package, whatever is left in it) must have its manifest, and the
manifest must match the sha256 the installer wrote to RECORD; every model file must
match the manifest. A source checkout (no such dist-info: models from ``make train``) has
no manifest and nothing to check against.

Reads with importlib.resources, and the installer's RECORD and METADATA files directly, not
through importlib.metadata (importing it alone was a tenth of the -onnx package's cold
import + predict); imports neither scikit-learn nor joblib.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import functools
import hashlib
import json
import re
from importlib.resources import files
from pathlib import Path, PurePosixPath
from typing import IO, Any, Iterator

from .errors import IntegrityError, UnknownModelError

PACKAGE = __package__  # the import name: this code is the same whatever the package is called
DISTRIBUTION = PACKAGE.replace("_", "-")  # its distribution's (normalised) name: the pipeline names it so
# The file that makes a folder of models/ a model; the -onnx twin sets "model.onnx" in its copy of this module.
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
PACKAGE_DIR = Path(__file__).resolve().parent
HASH_BLOCK = 1 << 20  # hashes read files in blocks: memory stays flat whatever the model's size


def _models():
    return files(PACKAGE) / "models"


@functools.cache
def installed_distribution() -> Path | None:
    """The ``<name>-<version>.dist-info`` folder of the installed copy, or None (a source checkout).

    It is the folder beside this package (in site-packages), where installers write it, whatever is
    left in it: with RECORD, WHEEL or METADATA deleted it still marks an installed copy, else deleting
    those files would turn the integrity check off. Cached: looked up once per process.
    """
    for folder in sorted(PACKAGE_DIR.parent.glob("*.dist-info")):
        if folder.is_dir() and _name_and_version(folder)[0] == DISTRIBUTION:
            return folder
    return None


def _name_and_version(dist_info: Path) -> tuple[str, str]:
    """The project (normalised) and version a dist-info folder's name gives.

    >>> _name_and_version(Path("MyModel-1.1.2+titanic.dist-info")), _name_and_version(Path("mymodel_prod-3.dist-info"))
    (('mymodel', '1.1.2+titanic'), ('mymodel-prod', '3'))
    """
    name, _, version = dist_info.name.removesuffix(".dist-info").rpartition("-")
    return normalised_name(name), version


def normalised_name(name: str) -> str:
    """A project's name as installers and importlib.metadata compare them (PEP 503).

    >>> normalised_name("Scikit_Learn"), normalised_name("zope.interface")
    ('scikit-learn', 'zope-interface')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def metadata_version(dist_info: Path) -> str | None:
    r"""The ``Version`` header of a dist-info folder's METADATA (its headers only are read); None without one.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = Path(folder, "METADATA").write_text("Metadata-Version: 2.4\nName: numpy\nversion:  2.4.6 \n\nVersion: 9\n")
    ...     metadata_version(Path(folder)), metadata_version(Path(folder, "gone"))
    ('2.4.6', None)
    """
    try:
        with open(dist_info / "METADATA", encoding="utf-8") as headers:
            for line in headers:
                if not line.strip():  # the headers end at the first blank line
                    return None
                name, colon, value = line.partition(":")
                if colon and name.strip().lower() == "version":
                    return value.strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None


def reinstall_hint() -> str:
    dist_info = installed_distribution()
    if dist_info is None:
        return "run make train in the source checkout"
    version = metadata_version(dist_info) or _name_and_version(dist_info)[1]  # METADATA deleted
    return f"reinstall: pip install --force-reinstall {DISTRIBUTION}=={version}"


def _recorded_hash(dist_info: Path, relative: str) -> tuple[str, str] | None:
    """(algorithm, hex digest) the installer recorded in RECORD for ``<package>/<relative>``."""
    try:
        record = (dist_info / "RECORD").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    wanted = f"{PACKAGE}/{relative}"
    try:
        for row in csv.reader(record.splitlines()):
            if len(row) >= 2 and row[1] and PurePosixPath(row[0]).as_posix() == wanted:
                algorithm, _, value = row[1].partition("=")
                return algorithm, base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
    except (csv.Error, ValueError):  # not CSV (a field over csv's limit), a hash that is not base64
        return None
    return None


def _check_against_record(data: bytes, where: str) -> None:
    distribution = installed_distribution()
    recorded = _recorded_hash(distribution, f"models/{MANIFEST_FILE}")
    if recorded is None or recorded[0] not in hashlib.algorithms_guaranteed:
        raise IntegrityError(f"{where} has no usable hash in the installed package's RECORD, so it cannot be "
                             f"checked and no model is loaded; {reinstall_hint()}")
    algorithm, expected = recorded
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise IntegrityError(f"{where} has {algorithm} {actual}, but the installer recorded {expected} in RECORD: "
                             f"the manifest was changed, so no model is loaded; {reinstall_hint()}")


@functools.cache
def manifest() -> dict[str, Any]:
    """What the build recorded: version, data tag, runtime pins and file hashes."""
    resource = _models() / MANIFEST_FILE
    where = str(PACKAGE_DIR / "models" / MANIFEST_FILE)
    installed = installed_distribution() is not None
    if not resource.is_file():
        if installed:
            raise IntegrityError(f"{where} is missing from the installed package, so its model files cannot be "
                                 f"checked and none is loaded; {reinstall_hint()}")
        return {"files": {}, "requires": {}, "release": {}}  # a source checkout, never built
    data = resource.read_bytes()
    if installed:
        _check_against_record(data, where)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{where} is not valid JSON ({exc}): the package is damaged; {reinstall_hint()}") from None
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        raise IntegrityError(f"{where} has no list of file hashes: the package is damaged; {reinstall_hint()}")
    for relative in document["files"]:
        if not (_models() / relative).is_file():
            raise IntegrityError(f"{PACKAGE_DIR / 'models' / relative} is listed in the package manifest but "
                                 f"missing; {reinstall_hint()}")
    return document


def list_models() -> list[str]:
    manifest()  # a damaged installation is reported as such, not as a model gone missing
    folder = _models()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / MODEL_FILE).is_file())


def check_name(name: str) -> str:
    available = list_models()
    if name not in available:
        raise UnknownModelError(f"no model named {name!r} in this package; available: {', '.join(available) or 'none'}")
    return name


@functools.cache
def model_metadata(name: str) -> dict[str, Any]:
    relative = f"{check_name(name)}/{METADATA_FILE}"
    try:
        return json.loads(verified_bytes(relative))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{PACKAGE_DIR / 'models' / relative} is not valid JSON ({exc}); "
                             f"{reinstall_hint()}") from None


def sha256_of(stream: IO[bytes]) -> str:
    """The sha256 of what is left to read in ``stream``, read in blocks of HASH_BLOCK bytes."""
    digest = hashlib.sha256()
    while block := stream.read(HASH_BLOCK):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """A file's sha256, read in blocks (a model of any size never sits in memory whole)."""
    with open(path, "rb") as handle:
        return sha256_of(handle)


def _expected_sha256(relative: str) -> str | None:
    """The manifest's sha256 for ``relative``; None in a source checkout (nothing was recorded)."""
    listed = manifest()["files"]
    expected = listed.get(relative)
    if expected is None and (installed_distribution() is not None or listed):
        raise IntegrityError(f"{relative} is not listed in the package manifest, so it is not loaded; "
                             f"{reinstall_hint()}")
    return expected


def _refuse_unless_equal(relative: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise IntegrityError(
            f"{relative} has sha256 {actual}, but the build recorded {expected}: the installed file was "
            f"changed, so it is not loaded; {reinstall_hint()}")


def _cannot_read(relative: str, exc: OSError) -> IntegrityError:
    return IntegrityError(f"cannot read {PACKAGE_DIR / 'models' / relative} ({exc.strerror}); {reinstall_hint()}")


def verified_bytes(relative: str) -> bytes:
    """A small packaged file's bytes (metadata), after checking them against the build manifest."""
    expected = _expected_sha256(relative)
    try:
        data = (_models() / relative).read_bytes()
    except OSError as exc:
        raise _cannot_read(relative, exc) from None
    if expected is not None:
        _refuse_unless_equal(relative, hashlib.sha256(data).hexdigest(), expected)
    return data


@contextlib.contextmanager
def opened_verified(relative: str) -> Iterator[IO[bytes]]:
    """A packaged file open for reading at its start, after its sha256 was checked against the manifest.

    The file is hashed in blocks through the very file object that is handed out, so a large model
    is never held in memory twice, and a file renamed or replaced on disk after the check is not the
    one read: the open object still reads the inode that was hashed. What no check can stop is a
    process with write access changing that same inode in place between the check and the read.
    """
    expected = _expected_sha256(relative)
    try:
        stream = (_models() / relative).open("rb")
    except OSError as exc:
        raise _cannot_read(relative, exc) from None
    with stream:
        if expected is not None:
            try:
                actual = sha256_of(stream)
            except OSError as exc:
                raise _cannot_read(relative, exc) from None
            _refuse_unless_equal(relative, actual, expected)
            stream.seek(0)
        yield stream
