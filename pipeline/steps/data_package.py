"""The training data as a package: ``<package>-data``, pinned by the models trained on it.

``make release`` publishes the data as read from its source, as a Parquet file, in a wheel with
``metadata.json`` (the frame's canonical sha256, the file's, rows, columns and types, source,
target, tag) and a small API (``path()``, ``frame()``, ``metadata()``:
pipeline/steps/templates/data_package_init.py), built by pipeline/steps/data_wheel.py. Its version follows the data, not the models: the same bytes are never
published twice (a release whose data a published version holds pins that version), a column
added, removed or retyped bumps the minor, anything else the patch; the data tag is its label
(``mymodel-data==1.0.1+wine``). Every model records the pin (requirement and wheel sha256) in
its metadata.

The next data version and its bump come from the data versions this clone recorded (releases/
or HEAD's git history, or pinned by sha256 in a model wheel it recorded), never from a data
wheel nobody here recorded: anyone with the upload credential can put one on the index, with any
version and columns. Those are reported in one line and not followed; their numbers are only
stepped over, and so are the numbers the index saw used and no longer serves (a data version
removed through the index is burned: index/numbers.py, ``GET /+versions``).

A data wheel from the index is hostile input: it is never imported by the pipeline, its sha256
is checked against a record the index cannot write before a byte of it is read, and what is
read of it is bounded (DATA_JSON_LIMIT, DATA_FILE_LIMIT).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from pipeline.steps import release_records
from pipeline.config import (
    DATA_FIRST_VERSION, DATA_IMPORT_NAME, DATA_JSON_LIMIT, DATA_PACKAGE, PACKAGE, RELEASES_DIR, TITANIC_SOURCE,
    DatasetConfig,
)
from pipeline.steps.data_input import DataInput, fingerprint
from pipeline.steps.data_wheel import (
    METADATA_MEMBER, PIN_KEY, build_wheel, column_change, data_member, describe, extract, file_sha256, parse_requirement,
    read_metadata, requirement, sha256_file, wheel_name, write_file,
)
from pipeline.errors import DataError, PackageIndexError, RecordError
from pipeline.indexes.base import IndexClient, ServedFile
from pipeline.views import registry
from pipeline.views.registry import CACHE_FOLDER

if TYPE_CHECKING:
    from pipeline.steps.data import Data


# --- a release's data --------------------------------------------------------------------------------------------

def pin_of(metadata: dict, wheel_sha256: str) -> dict:
    """What every model records of the data package whose metadata.json is ``metadata``."""
    version, columns = metadata.get("version"), metadata.get("columns")
    return {"name": DATA_PACKAGE, "version": version, "requirement": requirement(str(version)),
            "wheel": wheel_name(str(version)), "sha256": wheel_sha256, "rows": metadata.get("rows"),
            "columns": len(columns) if isinstance(columns, list) else None, "size": metadata.get("size")}


@dataclass
class DataPlan:
    """The data package a release's models pin: a published one (``new`` False) or one to publish."""

    metadata: dict
    wheel: Path | None  # None: published already, nothing built
    sha256: str  # of the wheel
    new: bool
    note: str
    _folder: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def pin(self) -> dict:
        return pin_of(self.metadata, self.sha256)


@dataclass(frozen=True)
class PublishedData:
    version: str
    metadata: dict | None  # None: no readable wheel
    served: ServedFile | None  # its wheel


def known_input(config: DatasetConfig, data_file: str | None) -> DataInput | None:
    """The data files' fingerprint before the index is reached; None for a data package source (its bytes
    come from the index), a team loader (its rows are read in the train step), or a file that cannot be
    read (release_input says why, in the train step)."""
    if parse_requirement(data_file or config.source) is not None:
        return None
    try:
        return fingerprint(config, data_file)
    except (DataError, OSError):
        return None


def release_input(client: IndexClient, config: DatasetConfig, data_file: str | None,
                  known: DataInput | None = None) -> tuple[DataInput, DataPlan | None]:
    """A release's training data, by its bytes' sha256 (parsed only if a model is trained), from the data
    file (DATA_FILE or [dataset] source; ``known``: fingerprinted already) or from a recorded data package
    ([dataset] source = "<package>-data==X"), with the DataPlan that pins that package. A data file's
    plan comes after training (``plan``), which reads and checks the file first."""
    wanted = parse_requirement(data_file or config.source)
    if wanted is None:
        if known is None and (known := fingerprint(config, data_file)) is None:
            from pipeline.steps.data import loaded_input  # a team loader: its rows are read to know them

            known = loaded_input(config, data_file)
        return known, None
    folder = tempfile.TemporaryDirectory(prefix=f"{DATA_IMPORT_NAME}-")  # the extracted file, till the release ends
    with recorded_package(client, wanted) as found:
        path = Path(folder.name) / found.path.name
        shutil.copyfile(found.path, path)
    data = DataInput(str(path), str(found.metadata.get("source")), sha256_file(path))
    note = f"data: {requirement(wanted)} ([dataset] source): pinned, nothing to publish"
    return data, DataPlan({**found.metadata, "version": wanted}, None, found.pin["sha256"], False, note, folder)


def plan(client: IndexClient, config: DatasetConfig, source: str, sha256: str,
         read: Callable[[], Data]) -> DataPlan | None:
    """The data package of a release trained on the data of ``source`` whose frame has ``sha256``; None
    when the data is not published ([dataset] publish = false, or the built-in Titanic copy). The data
    is read (``read``) and its Parquet file written only when no data package this clone recorded holds
    the same frame."""
    if not config.publish_data:
        print(f"data: not published as {DATA_PACKAGE} ([dataset] publish = false); the models record its sha256 only")
        return None
    if source == TITANIC_SOURCE:
        print(f"data: {TITANIC_SOURCE} ships inside the pinned scikit-learn wheel; no data package")
        return None
    published = published_data(client)
    records = recorded_data(client, published)
    same = [found for found in published if found.metadata is not None and found.served is not None
            and found.metadata.get("sha256") == sha256]
    for found in same:  # a wheel this clone recorded: ours, nothing to read or build
        record = records.get(found.version)
        if record is not None and found.served.sha256 in record.sha256:
            return DataPlan({**found.metadata, "version": found.version}, None, found.served.sha256, False,
                            _unchanged(found, f"checked against {record.where}"))
    folder = tempfile.TemporaryDirectory(prefix=f"{DATA_IMPORT_NAME}-")
    out = Path(folder.name)
    data = read()
    path, facts = write_file(data, describe(data, config.target, config.tag), out)
    for found in same:  # published by another clone: ours too if our build of it gives its bytes
        # Its labels, to rebuild its wheel from our file; the version is the file name's, never the document's.
        labels = {**{k: found.metadata.get(k) for k in ("source", "target", "tag")}, "version": found.version}
        wheel = build_wheel(path, {**facts, **labels}, out)
        if sha256_file(wheel) == found.served.sha256:
            return DataPlan({**facts, **labels}, wheel, found.served.sha256, False,
                            _unchanged(found, "rebuilt byte for byte"), folder)
        wheel.unlink()
    unrecorded = [found.version for found in published if found.version not in records]
    if unrecorded:
        more = f" and {len(unrecorded) - 5} more" if len(unrecorded) > 5 else ""
        print(f"data: {DATA_PACKAGE} {', '.join(unrecorded[:5])}{more} on the index: no record of "
              f"{'it' if len(unrecorded) == 1 else 'them'} in this clone (releases/, HEAD's git history, a recorded "
              "model's pin), so not followed")
    trusted = [_trusted(found, records[found.version]) for found in published if found.version in records]
    taken = {found.version for found in published} | used_numbers(client)
    version, why = _next_version(trusted, facts, config.tag, taken)
    wheel = build_wheel(path, {**facts, "version": version}, out)
    path.unlink()  # in the wheel now
    return DataPlan({**facts, "version": version}, wheel, sha256_file(wheel), True,
                    f"data: {why} -> publishes {requirement(version)}", folder)


def _unchanged(found: PublishedData, how: str) -> str:
    return (f"data: unchanged, {requirement(found.version)} (sha256 {found.metadata['sha256'][:12]}…, {how}) "
            "is already published: pinned, nothing to publish")


def _trusted(found: PublishedData, record: release_records.Record) -> PublishedData:
    """``found`` with its metadata only when the index serves the recorded bytes."""
    served = found.served.sha256 if found.served is not None else None
    return found if served in record.sha256 else dataclasses.replace(found, metadata=None)


def _next_version(recorded: list[PublishedData], facts: dict, tag: str, taken: set[str] = frozenset()) -> tuple[str, str]:
    """The version of new data ``facts``, and why: numbered from the highest of the ``recorded`` data
    versions, compared with the highest of them whose metadata is known; a number ``taken`` on the
    index (any file of it, recorded or not) is stepped over, never reused.

    >>> _next_version([], {"columns": []}, "wine", {"1.0.0+wine"})
    ('1.0.1+wine', 'first data package (1.0.0+wine is taken on the index)')
    """
    if not recorded:
        number, part, why = DATA_FIRST_VERSION, "patch", "first data package"
    else:
        highest = max(recorded, key=lambda p: Version(p.version))
        readable = [p for p in recorded if p.metadata is not None]
        compared = max(readable, key=lambda p: Version(p.version)) if readable else None
        change = column_change(compared.metadata, facts) if compared else "no readable data package to compare with"
        major, minor, patch = (Version(highest.version).release + (0, 0))[:3]
        part = "minor" if change else "patch"
        number = f"{major}.{minor + 1}.0" if change else f"{major}.{minor}.{patch + 1}"
        against = compared.version if compared else highest.version
        why = f"{change} against {against} (minor)" if change else f"new data, same columns as {against} (patch)"
    skipped = []
    while (version := str(Version(f"{number}+{tag}"))) in taken:
        skipped.append(version)
        major, minor, patch = Version(number).release
        number = f"{major}.{minor + 1}.0" if part == "minor" else f"{major}.{minor}.{patch + 1}"
    taken_note = f" ({', '.join(skipped)} {'is' if len(skipped) == 1 else 'are'} taken on the index)" if skipped else ""
    return version, why + taken_note


def used_numbers(client: IndexClient) -> set[str]:
    """Data versions whose number the index saw used and does not serve (taken back: burned, any
    later upload of it refused), which a new data package steps over like a published one."""
    return {used.version for used in client.used_versions(DATA_PACKAGE)}


def published_data(client: IndexClient) -> list[PublishedData]:
    """Every data package version on the index, its metadata.json read from its wheel (bounded), once:
    kept by the wheel's sha256 in the index's state folder, so the next release downloads none again."""
    files = client.files(DATA_PACKAGE)
    found = []
    for version in sorted({f.version for f in files}, key=Version, reverse=True):
        wheel = next((f for f in files if f.version == version and f.filename.endswith(".whl")), None)
        metadata = None
        if wheel is not None:
            kept = client.settings.state_dir / CACHE_FOLDER / f"data-{wheel.sha256}.json" if wheel.sha256 else None
            metadata = _read_kept(kept)
            if metadata is None:
                with client.download_temporary(wheel) as download:  # refused unless it has the announced sha256
                    metadata = read_metadata(download)
                _keep(kept, metadata)
        found.append(PublishedData(version, metadata, wheel))
    return found


def _read_kept(kept: Path | None) -> dict | None:
    try:
        document = json.loads(kept.read_bytes()[:DATA_JSON_LIMIT + 1]) if kept else None
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _keep(kept: Path | None, metadata: dict | None) -> None:
    """Best effort: a cache that cannot be written costs a download next time, nothing else."""
    if kept is None or metadata is None:
        return
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        temporary = kept.with_name(f".{kept.name}.tmp")
        temporary.write_text(json.dumps(metadata), encoding="utf-8")
        temporary.replace(kept)
    except OSError:
        pass


def pin(models: list, pinned: dict | None) -> None:
    """Record the data package in every trained model's metadata (and so in the model card and make diff)."""
    if pinned:
        for model in models:
            model.metadata["data"][PIN_KEY] = pinned


def publish(client: IndexClient, data: DataPlan | None) -> None:
    """Upload a new data package's wheel, check what the index serves, and record its sha256 in
    releases/; a reused one only gets its record. The data package stays if the models' release
    fails after it: the next release with these bytes pins it again."""
    if data is None:
        return
    print(data.note)
    if data.new:
        from pipeline.steps.uploading import send, upload_settings

        import requests

        try:
            send(client, upload_settings(client), data.wheel)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else None
            raise PackageIndexError(f"the index refused {data.wheel.name} (HTTP {code}): another release published "
                                    f"{requirement(data.version)} first; run make release again") from None
        except requests.ConnectionError:
            raise PackageIndexError(f"the index at {client.url} went away during the upload of {data.wheel.name}; "
                                    "restart it (make index) and run make release again") from None
        served = next((f for f in client.files(DATA_PACKAGE) if f.filename == data.wheel.name), None)
        if served is None or client.download_sha256(served) != data.sha256:
            raise PackageIndexError(f"the index does not serve {data.wheel.name} with our sha256 {data.sha256} after "
                                    "the upload; check the index, then run make release again")
    _record(data, client.settings.simple_url)


def _record(data: DataPlan, simple_url: str, releases_dir: Path = RELEASES_DIR) -> None:
    lock = release_records.lock_file(data.version, releases_dir, DATA_PACKAGE)
    text = (f"# pip install --index-url {simple_url} --require-hashes --no-deps -r this-file\n"
            f"{requirement(data.version)} \\\n    --hash=sha256:{data.sha256}\n")
    if lock.is_file() and lock.read_text(encoding="utf-8") == text:
        return
    temporary = lock.with_name(f".{lock.name}.tmp")
    try:
        releases_dir.mkdir(exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(lock)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise RecordError(f"cannot record {requirement(data.version)} in this clone ({exc.strerror}: {exc.filename}); "
                          "free some space or make the checkout writable, then run make release again") from None


# --- reading a published data package back -----------------------------------------------------------------------

@dataclass(frozen=True)
class Fetched:
    path: Path  # the data file, extracted
    metadata: dict  # its metadata.json
    pin: dict  # what a model trained on it records


@contextlib.contextmanager
def fetched(client: IndexClient, version: str, trusted: frozenset[str], where: str) -> Iterator[Fetched]:
    """The data file of ``version``, from a wheel whose sha256 is one of ``trusted`` (``where``: the
    record they come from), extracted to a temporary folder; never imported, read with bounds."""
    name = wheel_name(version)
    served = next((f for f in client.files(DATA_PACKAGE) if f.filename == name), None)
    if served is None:
        raise PackageIndexError(f"{requirement(version)} has no wheel on {client.url}; published: "
                                f"{', '.join(client.versions(DATA_PACKAGE)) or 'none'}")
    if served.sha256 and served.sha256 not in trusted:
        raise _untrusted(name, served.sha256, where)
    with client.download_temporary(served) as download, \
            tempfile.TemporaryDirectory(prefix=f"{DATA_IMPORT_NAME}-") as tmp:
        digest = hashlib.file_digest(download, "sha256").hexdigest()
        if digest not in trusted:
            raise _untrusted(name, digest, where)
        download.seek(0)
        size = download.seek(0, 2)
        download.seek(0)
        metadata = read_metadata(download)
        member = data_member(metadata) if metadata is not None else None
        if member is None or not isinstance(file_sha256(metadata), str):
            raise DataError(f"{name} (recorded in {where}) has no readable {METADATA_MEMBER}; it is no data package "
                            "this pipeline built")
        path = Path(tmp) / member
        extracted = extract(download, path, name, member)
        if extracted != file_sha256(metadata):
            raise DataError(f"{name}: its {member} has sha256 {extracted}, its {METADATA_MEMBER} says "
                            f"{file_sha256(metadata)}; the data package is damaged")
        pin = pin_of({**metadata, "version": version}, digest)
        print(f"data: {requirement(version)} from {client.url} ({size} bytes, sha256 checked against {where})")
        yield Fetched(path, metadata, pin)


def _untrusted(name: str, digest: str, where: str) -> PackageIndexError:
    return PackageIndexError(f"the index serves {name} with sha256 {digest}, not the one {where} records; "
                             "the data package on the index changed: do not use it, check the index")


def data_record(version: str) -> release_records.Record | None:
    """The sha256 this clone (releases/, or HEAD's git history) recorded for data package ``version``."""
    return release_records.recorded(version, RELEASES_DIR, DATA_PACKAGE)


def recorded_data(client: IndexClient, published: list[PublishedData]) -> dict[str, release_records.Record]:
    """The data versions in ``published`` this clone recorded: its own record (data_record), else the
    sha256 a model wheel it recorded pins (read from that wheel's JSON only once its bytes are checked)."""
    records = {found.version: record for found in published if (record := data_record(found.version)) is not None}
    if len(records) < len(published):
        pinned = pinned_by_recorded_models(client)
        records.update({found.version: pinned[found.version] for found in published
                        if found.version not in records and found.version in pinned})
    return records


def pinned_by_recorded_models(client: IndexClient) -> dict[str, release_records.Record]:
    """Data version -> the sha256 that the model wheels this clone recorded pin (their served bytes
    are the recorded ones: the pins are this clone's, not the index's)."""
    files = client.files()
    pinned: dict[str, release_records.Record] = {}
    for version in reversed(registry.complete_versions(client, files)):
        record = release_records.recorded(version)
        wheel = next((f for f in files if f.version == version and f.filename.endswith(".whl")), None)
        if record is None or wheel is None or wheel.sha256 not in record.sha256:
            continue
        entry = registry.published_entry(client, version, files)  # refused unless the download has that sha256
        if entry.problem or entry.wheel_sha256 not in record.sha256:
            continue
        for data_version, sha256 in filter(None, map(_pin, entry.snapshot.models.values())):
            earlier = pinned.get(data_version)
            pinned[data_version] = release_records.Record(
                (earlier.sha256 if earlier else frozenset()) | {sha256},
                earlier.where if earlier else f"the pin of the wheel {record.where} records")
    return pinned


def _pin(metadata: dict) -> tuple[str, str] | None:
    """(data version, wheel sha256) a model's metadata pins; None if it pins none (or not in the form we write)."""
    pin = metadata.get("data", {}).get(PIN_KEY) if isinstance(metadata.get("data"), dict) else None
    if not (isinstance(pin, dict) and isinstance(pin.get("version"), str) and isinstance(pin.get("sha256"), str)):
        return None
    try:
        return str(Version(pin["version"])), pin["sha256"]
    except InvalidVersion:
        return None


@contextlib.contextmanager
def recorded_package(client: IndexClient, version: str) -> Iterator[Fetched]:
    """``make train DATA=<package>-data==X``: a data package this clone recorded (releases/ or HEAD's git history)."""
    record = data_record(version)
    if record is None:
        raise DataError(f"this clone has no record of {requirement(version)} (releases/{DATA_PACKAGE}-{version}.txt, "
                        "nor in HEAD's git history), so its bytes cannot be checked; pull the team's releases/ records, "
                        "or train from the data file (DATA_FILE=path.csv)")
    with fetched(client, version, record.sha256, record.where) as found:
        yield found


@dataclass(frozen=True)
class VerifyData:
    path: str  # what load_dataset reads: a file, or the built-in source
    label: str  # the source the release recorded (written into the rebuilt metadata; never read)
    pin: dict | None  # the data package the version pins


@contextlib.contextmanager
def verification_data(client: IndexClient, version: str, wheel_sha256: str | None, metadata: dict,
                      config: DatasetConfig, data_file: str | None) -> Iterator[VerifyData]:
    """The data ``make verify`` trains on, never a path the published metadata names: DATA_FILE, else
    the pinned data package (its sha256 checked against this clone's records), else the clone's
    own configured file. The caller checks the data's sha256 against the version's."""
    data = metadata.get("data") if isinstance(metadata.get("data"), dict) else {}
    label = data.get("source") if isinstance(data.get("source"), str) else None
    pinned = data.get(PIN_KEY) if isinstance(data.get(PIN_KEY), dict) else None
    if data_file:
        yield VerifyData(data_file, label or data_file, pinned)
        return
    if pinned is not None:
        try:
            pinned_version = str(Version(str(pinned.get("version"))))
        except InvalidVersion:
            raise DataError(f"{PACKAGE} {version} pins no valid {DATA_PACKAGE} version ({pinned.get('version')!r}); "
                            "pass DATA_FILE= with its data") from None
        model_record = release_records.recorded(version)
        if model_record is not None and wheel_sha256 in model_record.sha256:
            trusted, where = frozenset({str(pinned.get("sha256"))}), f"the pin of the wheel {model_record.where} records"
        elif (record := data_record(pinned_version)) is not None:
            trusted, where = record.sha256, record.where
        else:
            raise DataError(f"this clone has no record of {PACKAGE} {version} nor of {requirement(pinned_version)} "
                            "(releases/, HEAD's git history), so the data package's bytes cannot be checked; pull the team's "
                            "releases/ records, or pass DATA_FILE= with the data")
        with fetched(client, pinned_version, trusted, where) as found:
            yield VerifyData(str(found.path), label or str(found.metadata.get("source")), pinned)
        return
    source = config.source
    if source != TITANIC_SOURCE:
        from pipeline.steps.data import read_data  # pandas: only to check the data file

        try:
            found = read_data(config)
            state = None if data.get("sha256") in (found.sha256, found.file_sha256) else "holds other data"
        except DataError:
            state = "cannot be read"
        if state:
            raise DataError(f"make verify needs the data of {version} (sha256 {data.get('sha256')}): it was not "
                            f"published as {DATA_PACKAGE} ([dataset] publish = false) and {source} ([dataset] "
                            f"source) {state}; put the data there or pass DATA_FILE=path.csv")
    yield VerifyData(source, label or source, None)
