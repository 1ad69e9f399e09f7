"""One release, all or nothing: version -> train -> gate -> build -> upload -> verify -> record.

A failure before the upload changes nothing outside ``dist/.partial-*``; a
failure during or after it removes what this run put on the index. Releases
from one clone are serialised by a lock file; two clones racing for the same
version are kept apart by the index, which never replaces a published file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.cache import open_release_cache
from pipeline.package import onnx_names
from pipeline.steps import build as build_step
from pipeline.steps import (
    data_package, faults, gate, onnx_package, planning, provenance, publish, train_cache, used_numbers, yanked_models,
)
from pipeline.views import registry
from pipeline.config import (
    DIST_DIR, IMPORT_NAME, MODELS_DIR, PACKAGE, RELEASE_LOCK, RELEASES_DIR, VERSION_FILE, IndexSettings, check_models,
    load_dataset_config, env,
)
from pipeline.errors import (
    BuildError, DataError, Interrupted, LockBusyError, PackageIndexError, PipelineError, RecordError, UnreadableRelease,
)
from pipeline.indexes.base import IndexClient, version_of
from pipeline.indexes.connect import index_client
from pipeline.steps.intent import Intent
from pipeline.steps.release_records import lock_file
from pipeline.steps.model_files import metrics_table, save
from pipeline.steps.versioning import bump_part, parse, read_recorded, version_file_text

PARTIAL_PREFIX = ".partial-"


class Steps:
    """Prints each step as it runs, with its duration."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out, self.timings = out, {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.out(f"==> {name}")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - started
        self.out(f"    {name} done in {self.timings[name]:.2f} s")


@contextlib.contextmanager
def release_lock(path: Path = RELEASE_LOCK, timeout: float | None = None) -> Iterator[None]:
    """One release at a time per clone; the next one waits up to RELEASE_LOCK_TIMEOUT seconds."""
    timeout = float(env("RELEASE_LOCK_TIMEOUT", "900")) if timeout is None else timeout
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                if time.monotonic() >= deadline:
                    raise LockBusyError(f"another release (pid {holder}) still holds {path} after {timeout:.0f} s; "
                                        "wait for it to finish, then run make release again") from None
                if not announced:
                    print(f"waiting for another release (pid {holder}) to finish…", flush=True)
                    announced = True
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_index(settings: IndexSettings) -> IndexSettings:
    """Start the embedded index if needed; an external INDEX_URL must answer already.
    The settings of the index in use: with INDEX_AUTH unset, the running index's mode."""
    from index import control

    if settings.external_url:
        if not control.healthy(settings.url):
            raise PackageIndexError(f"the index at {settings.url} (INDEX_URL) does not answer; start it or fix INDEX_URL")
        return settings
    current = control.start(settings)
    print(current.describe())
    return dataclasses.replace(settings, auth=current.auth)


def undo_upload(client: IndexClient, built: build_step.Built, intent: Intent) -> str:
    """Take ``built.version`` off the index if this run owns it (its sdist went up first): its number is
    then burned (index/numbers.py), so no release publishes other bytes under it."""
    try:
        served = client.held(built.version)
    except PackageIndexError:
        served = None
    if served is not None and intent.sdist not in intent.owned(served):
        return f"nothing of this run's {built.version} is on the index"
    if served is None and intent.sdist not in intent.started:
        return f"nothing of this run's {built.version} is on the index"
    try:
        if served is None:
            raise PackageIndexError("the index does not answer")
        client.remove_version(built.version)
        _undo_twin(client, built.version, intent)
    except PackageIndexError as exc:
        return f"could not remove the partial {built.version} ({exc}); the next make release removes it"
    return f"removed the partial {built.version} from the index"


def _undo_twin(client: IndexClient, version: str, intent: Intent) -> None:
    """Take this run's -onnx wheel of ``version`` off the index too (it goes up last), and say so."""
    if not any(onnx_names.is_twin_file(name) for name in intent.started):
        return
    served = client.held(version, onnx_names.TWIN)
    if any(onnx_names.is_twin_file(name) for name in intent.owned(served)):
        client.remove_version(version, onnx_names.TWIN)
        print(f"removed the partial {onnx_names.TWIN} {version} from the index too", flush=True)


def recover_leftovers(client: IndexClient, dist_dir: Path = DIST_DIR) -> None:
    """A release that died left dist/.partial-*: finish its record or take its upload back."""
    for leftover in sorted(dist_dir.glob(f"{PARTIAL_PREFIX}*")):
        intent = Intent.load(leftover)
        if intent is not None and intent.started:
            twin = leftover / onnx_names.twin_wheel_name(intent.version)
            built = build_step.Built(intent.version, leftover / build_step.sdist_name(intent.version),
                                     leftover / build_step.wheel_name(intent.version), twin if twin.name in intent.files else None)
            if _recorded_lock(intent):
                finish_record(built, intent, dist_dir)
                print(f"recovering an interrupted release: {intent.version} was published and recorded; "
                      "finished its record")
            else:
                try:
                    outcome = undo_upload(client, built, intent)
                except PackageIndexError:
                    continue
                if outcome.startswith("could not"):
                    continue  # the index is down: keep the leftover for the next run
                print(f"recovering an interrupted release: {outcome}")
        shutil.rmtree(leftover, ignore_errors=True)


def _recorded_lock(intent: Intent) -> bool:
    """The release lock is the commit point: written, with our hashes, means recorded."""
    lock = lock_file(intent.version)
    return lock.is_file() and all(f"--hash=sha256:{digest}" in lock.read_text() for name, digest in intent.files.items()
                                  if not onnx_names.is_twin_file(name))


def finish_record(built: build_step.Built, intent: Intent, dist_dir: Path = DIST_DIR) -> None:
    """The part of ``record`` after the commit point, again: safe to repeat."""
    for path in built.files:
        if path.is_file():
            os.replace(path, dist_dir / path.name)
    current = recorded_version()
    if current is None or parse(current) < parse(intent.version):
        os.replace(_temporary(VERSION_FILE, version_file_text(intent.version)), VERSION_FILE)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, so recording is never cut in half."""
    # Python runs signal handlers in the main thread whichever thread the kernel picked,
    # so holding them is done with handlers, not with a thread's signal mask.
    held: list[int] = []
    previous = {number: signal.signal(number, lambda received, _: held.append(received))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if held:
            signal.raise_signal(held[0])


def publish_built(client: IndexClient, built: build_step.Built, steps: Steps) -> Path:
    """Upload, verify and record; on any failure or interruption take back what this run uploaded.

    Returns the consumer lock file written for the release."""
    intent = Intent(built.sdist.parent, built.version, {p.name: build_step.sha256_file(p) for p in built.files})
    recorded = False
    try:
        with steps("upload"):
            publish.check_not_published(client, built.version, twin=built.twin is not None)
            publish.upload(client, built, intent)
            client.seal(built.version, intent.files)  # served from here on, every file at once
            faults.point("upload")
        with steps("verify"):
            publish.verify(client, built, intent.files)
            faults.point("verify")
        with steps("record"):
            with signals_deferred():
                lock = record(built, client, intent.files)
                recorded = True
                intent.discard()
    except BaseException as exc:
        if recorded:
            if isinstance(exc, KeyboardInterrupt):
                raise Interrupted(f"{str(exc) or 'interrupted'} after {PACKAGE} {built.version} was published "
                                  "and recorded", getattr(exc, "exit_code", 130), accounted=True) from None
            raise
        outcome = undo_upload(client, built, intent) if intent.started else "nothing was uploaded"
        if not outcome.startswith("could not"):
            intent.discard()  # nothing left to recover
        if isinstance(exc, PipelineError):
            raise type(exc)(f"{exc} ({outcome})") from None
        if isinstance(exc, KeyboardInterrupt):
            code = getattr(exc, "exit_code", 130)
            raise Interrupted(f"{str(exc) or 'interrupted'}: {outcome}; nothing was recorded", code,
                              accounted=True) from None
        raise
    return lock


def record(built: build_step.Built, client: IndexClient, hashes: dict[str, str], dist_dir: Path = DIST_DIR) -> Path:
    """After a verified upload: dist/ files, the consumer lock, the repo's version record.

    Everything is written to temporary files first and renamed into place last, so a
    write error (disk full, read-only checkout) leaves the clone as it was. The release
    lock is renamed into place first: it is the commit point a later run recovers from.
    """
    faults.point("record")
    lock = lock_file(built.version)
    temporaries: list[Path] = []
    try:
        dist_dir.mkdir(parents=True, exist_ok=True)
        RELEASES_DIR.mkdir(exist_ok=True)
        main = {name: digest for name, digest in hashes.items() if not onnx_names.is_twin_file(name)}
        temporaries.append(_temporary(lock, publish.format_lock(built.version, main, client.settings.simple_url)))
        temporaries.append(_temporary(VERSION_FILE, version_file_text(built.version)))
        os.replace(temporaries[0], lock)
    except OSError as exc:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise RecordError(f"cannot record {built.version} in this clone ({exc.strerror}: {exc.filename}); "
                          "free some space or make the checkout writable, then run make release again") from None
    faults.point("record-commit")
    os.replace(temporaries[1], VERSION_FILE)
    for path in built.files:
        os.replace(path, dist_dir / path.name)
    return lock


def _temporary(path: Path, text: str) -> Path:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    return temporary


def recorded_version() -> str | None:
    return read_recorded(VERSION_FILE.read_text(encoding="utf-8")) if VERSION_FILE.is_file() else None


def upload_from_dist(settings: IndexSettings, version: str | None) -> tuple[IndexSettings, str, Path]:
    """``make upload``: publish a version built into dist/ (the newest by default); the settings
    of the index used, the version and its lock."""
    candidates = sorted({version_of(p.name) for p in DIST_DIR.glob(f"{IMPORT_NAME}-*.whl")} - {None}, key=parse)
    version = version or (candidates[-1] if candidates else None)
    twin = version and DIST_DIR / onnx_names.twin_wheel_name(version)
    built = version and build_step.Built(version, DIST_DIR / build_step.sdist_name(version),
                                         DIST_DIR / build_step.wheel_name(version), twin if twin.is_file() else None)
    if not built or not all(p.is_file() for p in built.files):
        raise BuildError(f"no built sdist and wheel{' for ' + version if version else ''} in {DIST_DIR}; "
                         "run make build first")
    with release_lock():
        settings = ensure_index(settings)
        client = index_client(settings)
        recover_leftovers(client)
        used_numbers.take_back_abandoned(client)
        with staging_folder(version) as staging:
            staging.mkdir()
            staged = build_step.Built(version, staging / built.sdist.name, staging / built.wheel.name,
                                      built.twin and staging / built.twin.name)
            for source, target in zip(built.files, staged.files, strict=True):
                shutil.copy2(source, target)
            lock = publish_built(client, staged, Steps())
    return settings, version, lock


@contextlib.contextmanager
def staging_folder(version: str) -> Iterator[Path]:
    """``dist/.partial-<version>-<pid>``, removed at the end unless an upload began and could
    not be taken back: then the next release recovers from the intent file inside."""
    staging = DIST_DIR / f"{PARTIAL_PREFIX}{version}-{os.getpid()}"
    try:
        yield staging
    except BaseException:
        if Intent.load(staging) is None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def release(settings: IndexSettings, bump: str | None, tag: str | None, data_file: str | None,
            force: bool) -> str | None:
    """Train, then publish the version the changes require; None when nothing changed.

    Only the models whose inputs changed are trained (pipeline/steps/train_cache.py): the
    others, and a release where nothing changed, are taken from the cache by their inputs' sha256."""
    # DATA= is what training records and the version carries; the tables are built below, those to train only
    config = load_dataset_config(tag=tag, check=False)
    tag = config.tag
    if bump:
        bump_part(bump)  # a bad BUMP fails before anything runs
    cache = open_release_cache()
    steps = Steps()
    started = time.perf_counter()
    with release_lock():
        known = data_package.known_input(config, data_file)
        reuse = train_cache.Reuse.look_up(cache, config, known)
        check_models(config, reuse.to_train(config))  # a bad table fails before anything runs
        with steps("index"):
            settings = ensure_index(settings)
            client = index_client(settings)
            recover_leftovers(client)
            used_numbers.take_back_abandoned(client)
            faults.point("index")
        with steps("train"):
            data, pinned = data_package.release_input(client, config, data_file, known)
            if known is None:  # a data package's bytes: known now (every table was built above)
                reuse = train_cache.Reuse.look_up(cache, config, data)
            models = reuse.train(data, config)
            load_data = functools.partial(reuse.dataset, data, config)  # read only if the gate or the figures need it
            frame_sha256 = models[0].metadata["data"]["sha256"]  # what every model recorded of the data read
            data_plan = pinned if pinned is not None else data_package.plan(
                client, config, data.source, frame_sha256, functools.partial(reuse.data, data, config))
            data_package.pin(models, data_plan and data_plan.pin)
            save(models)
            reuse.remember(models, MODELS_DIR)
            print(metrics_table({m.name: m.metadata["metrics"] for m in models}))
            faults.point("train")
        with steps("version"):
            plan = planning.plan(client, recorded_version(), bump, tag, force)
            if plan.up_to_date:
                print(f"{PACKAGE} {plan.version} is up to date (models byte-identical): nothing to release")
                return None
            if plan.skipped:
                print(plan.skipped)
            print(f"next version: {plan.describe()}")
            yank_notes = yanked_models.check(client, force)
            faults.point("version")
        with steps("gate"):
            notes = gate.check(client, plan.baseline, models, load_data, config, force)
            baseline_started = time.perf_counter()
            baseline = gate.baseline(client, plan.baseline, models, load_data, config)
            if baseline is not None:
                print(baseline.describe(time.perf_counter() - baseline_started))
                notes = {**notes, **baseline.notes}
            faults.point("gate")
        version = plan.version
        if data_plan is not None:
            with steps("data"):
                data_package.publish(client, data_plan)
        with staging_folder(version) as staging:
            with steps("build"):
                notes = {**plan.release_notes(), "gate": config.gate.recorded(), **notes, **yank_notes}
                built = build_step.build(version, staging, release_notes=notes,
                                         baselines={m.name: baseline.of(m.name) for m in models} if baseline else None)
                print(onnx_package.summary(built.twin, version, MODELS_DIR, [m.name for m in models]))
                faults.point("build")
            lock = publish_built(client, built, steps)
    total = time.perf_counter() - started
    print(f"released {PACKAGE} {version} in {total:.2f} s ("
          + ", ".join(f"{k} {v:.2f} s" for k, v in steps.timings.items()) + ")")
    print(f"hash-locked requirement: {lock.relative_to(lock.parents[1])}")
    print(publish.install_instructions(settings, f"{PACKAGE}=={version}"))
    if built.twin:
        print(f"its ONNX twin (onnxruntime and numpy only): {onnx_names.TWIN}=={version} from the same index")
    return version


def _compare_twin(client: IndexClient, version: str, rebuilt: str | None) -> bool:
    """Does the rebuild's -onnx wheel (sha256; None: no model converted) match what the index serves?"""
    name = onnx_names.twin_wheel_name(version)
    remote = next((f.sha256 for f in client.files(onnx_names.TWIN) if f.filename == name), None)
    if remote is None and rebuilt is None:
        return True
    print(f"wheel {name}\n  index:   sha256 {remote or '(none published)'}\n  rebuilt: sha256 {rebuilt or '(none built)'}")
    return remote == rebuilt


def reproduce(settings: IndexSettings, version: str, data_file: str | None) -> bool:
    """Rebuild ``version`` from this checkout and compare its wheel with the index's: trained from
    scratch (no model or conversion from the release cache), so a cache could not hide a difference."""
    from pipeline.steps.data import load_dataset
    from pipeline.steps.train import train

    client = index_client(settings)
    served = {f.filename: f for f in client.files() if f.version == version}
    wheel_name = build_step.wheel_name(version)
    if wheel_name not in served:
        raise PackageIndexError(f"{version} has no wheel on {client.url}; published: {', '.join(client.versions()) or 'none'}")
    with gate.published_wheel(client, version) as wheel:
        manifest, models = registry.wheel_json(wheel, version)
        baselines = build_step.recorded_baselines(wheel, models, version)
    meta = next(iter(models.values()), {})
    config = load_dataset_config(tag=parse(version).local)
    with tempfile.TemporaryDirectory(prefix=f"{IMPORT_NAME}-verify-") as tmp, \
            data_package.verification_data(client, version, served[wheel_name].sha256, meta, config, data_file) as data:
        dataset = dataclasses.replace(load_dataset(config, data.path), source=data.label)
        trained_on = meta.get("data", {}).get("sha256")
        if trained_on is not None and trained_on == dataset.file_sha256:  # released before frames were hashed
            dataset = dataclasses.replace(dataset, sha256=trained_on)
        if dataset.sha256 != trained_on:
            raise DataError(f"the data read from {data.path} has sha256 {dataset.sha256}, {version} was trained on "
                            f"{trained_on}; pass DATA_FILE= with that data")
        models_dir = Path(tmp) / "models"
        trained = train(dataset, config)
        data_package.pin(trained, data.pin)
        save(trained, models_dir)
        built = build_step.build(version, Path(tmp) / "dist", models_dir, release_notes=manifest.get("release"),
                                 baselines=baselines)
        local = build_step.sha256_file(built.wheel)
        local_twin = built.twin and build_step.sha256_file(built.twin)
    remote = served[wheel_name].sha256
    commit = meta.get("git", {}).get("commit")
    print(f"wheel {wheel_name}\n  index:   sha256 {remote}\n  rebuilt: sha256 {local}")
    same_twin = _compare_twin(client, version, local_twin)
    if local == remote and same_twin:
        print("reproducible: the rebuilt wheel is byte-identical to the published one"
              + (f", and so is the {onnx_names.TWIN} wheel" if local_twin else ""))
        return True
    here = provenance.git_commit()
    hint = (f"it was built from commit {commit}, this checkout is {here}: git checkout {commit} and retry"
            if commit != here else "same commit: the data, library versions or a dirty tree differ (see the metadata)")
    print(f"NOT reproducible: {hint}")
    return False
