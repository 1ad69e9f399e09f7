"""Upload a built version with twine, then read every file back and compare hashes."""

from __future__ import annotations

from pathlib import Path

from pipeline.package import onnx_names
from pipeline.steps import faults
from pipeline.steps.build import Built
from pipeline.config import INDEX_READER, PACKAGE, IndexSettings, install_from_replica
from pipeline.errors import PackageIndexError, VersionError
from pipeline.indexes.base import IndexClient
from pipeline.steps.intent import Intent
from pipeline.steps import used_numbers
from pipeline.steps.uploading import send, upload_settings
from pipeline.steps.versioning import check_publishable, next_version, parse


def check_not_published(client: IndexClient, version: str, twin: bool = False) -> None:
    """twine's --skip-existing does not work on private indexes, so ask first (``twin``: the
    -onnx distribution goes up too, and must not hold the version either). A number the index has
    seen used (taken back, or uploaded by a release that has not sealed it) is refused too."""
    used = used_numbers.used(client)
    if version in used:
        taken = sorted({*client.versions(), *used}, key=parse)
        raise VersionError(f"{version} was used before ({used[version].describe()}): a number is used once; "
                           f"release {next_version(taken, None, 'patch', parse(version).local or 'data')} instead "
                           "(make release picks it; or make build, then make upload)")
    check_publishable(version, client.versions())
    if twin and version in client.versions(onnx_names.TWIN):
        raise PackageIndexError(f"{onnx_names.TWIN} {version} is already on the index although {PACKAGE} {version} "
                                f"is not: remove it (a leftover) or release the next version")


def upload(client: IndexClient, built: Built, intent: Intent) -> None:
    """Upload the sdist, then the wheel; ``intent`` records each upload before it begins
    and once the index took it.

    The index never replaces a file, so whoever uploads a version's sdist first owns
    that version: a racing release is refused at its first file and uploads nothing
    (devpi takes a byte-identical file, from a clone at the same commit, as already there).
    """
    import requests
    from twine.exceptions import TwineException

    settings = upload_settings(client, client.upload_url)  # devpi: its staging index, until the seal
    faults.point("before-upload")
    for path in built.files:
        intent.starting(path.name)
        try:
            stored = send(client, settings, path)
            if not stored:
                intent.refuse(path.name)
                raise PackageIndexError(f"another release published {built.version} first: the index already held "
                                        f"{path.name} (byte-identical, from a clone at the same commit); "
                                        "run make release again")
            faults.point("sdist-upload" if path == built.sdist else "onnx-upload" if path == built.twin
                         else "wheel-upload")
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else None
            if code in (401, 403):
                raise PackageIndexError(f"the index at {client.url} refused the upload credentials (HTTP {code}); "
                                        "check INDEX_USERNAME/INDEX_PASSWORD or the index's credentials.json") from None
            if code in (400, 409):
                intent.refuse(path.name)
                why = (exc.response.reason or "").strip() if exc.response is not None else ""
                if "used once" in why or "was sealed on" in why:  # the index's own refusal (index/numbers.py)
                    raise PackageIndexError(f"the index refused {path.name} (HTTP {code}): {why}") from None
                raise PackageIndexError(f"the index refused {path.name} (HTTP {code}): that file is already there, "
                                        "probably from a concurrent release; run make release again") from None
            if not _stored_as_ours(client, path, intent):
                raise PackageIndexError(f"uploading {path.name} to {client.url} failed (HTTP {code}); "
                                        "check the index log and retry") from None
            print(f"the index answered HTTP {code} to {path.name} but holds it with our sha256: upload kept")
        except requests.ConnectionError:
            raise PackageIndexError(f"the index at {client.url} went away during the upload of {path.name}; "
                                    "restart it (make index) and run make release again") from None
        except TwineException as exc:
            raise PackageIndexError(f"twine refused to upload {path.name}: {exc}") from None
        intent.accept(path.name)
        if len(intent.accepted) == 1:
            faults.point("after-first-upload")


def _stored_as_ours(client: IndexClient, path: Path, intent: Intent) -> bool:
    try:
        served = client.held(intent.version, onnx_names.TWIN if onnx_names.is_twin_file(path.name) else PACKAGE)
    except PackageIndexError:
        return False
    return path.name in intent.owned(served)


def verify(client: IndexClient, built: Built, hashes: dict[str, str]) -> None:
    """Every built file is served, with the link hash and downloaded bytes equal to ours (``hashes``:
    file name -> sha256, computed once by the caller)."""
    served = {f.filename: f for f in client.files() if f.version == built.version}
    if built.twin:
        served.update({f.filename: f for f in client.files(onnx_names.TWIN) if f.version == built.version})
    for path in built.files:
        local = hashes[path.name]
        remote = served.get(path.name)
        if remote is None:
            raise PackageIndexError(f"the index does not serve {path.name} after the upload; run make release again")
        if remote.sha256 != local:
            raise PackageIndexError(f"the index lists {path.name} with sha256 {remote.sha256}, ours is {local}; "
                                    "the upload was damaged, run make release again")
        downloaded = client.download_sha256(remote)
        if downloaded != local:
            raise PackageIndexError(f"the index served {path.name} with sha256 {downloaded}, ours is {local}; "
                                    "the upload was damaged, run make release again")
    extra = sorted(set(served) - {p.name for p in built.files})
    if extra:
        raise PackageIndexError(f"the index holds other files for {built.version} ({', '.join(extra)}); "
                                "another release published this version: run make release again")
    client.wait_for_readers(built.version, {n: h for n, h in hashes.items() if not onnx_names.is_twin_file(n)})
    if built.twin:
        client.wait_for_readers(built.version, {built.twin.name: hashes[built.twin.name]}, onnx_names.TWIN)


def install_instructions(settings: IndexSettings, requirement: str) -> str:
    """How a consumer installs ``requirement`` (an exact pin) from the index ``settings`` name."""
    url = settings.simple_url
    if settings.backend == "devpi":
        return (f"install it with (dependencies from your default index, {requirement} from this one only):\n"
                + install_from_replica(url, requirement))
    if settings.auth == "read" and not settings.external_url:
        # Private reads: the consumers' read-only credential, whose password is never printed.
        url = url.replace("http://", f"http://{INDEX_READER}:PASSWORD@")
        return (f"install it with the read-only credential (PASSWORD from {settings.state_dir}/reader.json, "
                f"or a ~/.netrc entry):\n  pip install --index-url {url} {requirement}")
    return f"install it with:\n  pip install --index-url {url} {requirement}"


def format_lock(version: str, hashes: dict[str, str], simple_url: str, project: str = PACKAGE) -> str:
    """A hash-locked requirement: ``pip install --require-hashes -r FILE`` (uv too)."""
    requirement = [f"{project}=={version}"] + [f"    --hash=sha256:{hashes[name]}" for name in sorted(hashes)]
    return (f"# pip install --index-url {simple_url} --require-hashes --no-deps -r this-file\n"
            "# (install the dependencies first, or add these lines to your own hash-locked requirements)\n"
            + " \\\n".join(requirement) + "\n")


def lock_text(client: IndexClient, version: str, project: str = PACKAGE) -> str:
    """The lock for any published version, from the bytes the index serves (``project``: the
    -onnx distribution's with ONNX=1)."""
    from pipeline.steps.versioning import parse

    version = str(parse(version))
    served = [f for f in client.files(project) if f.version == version]
    if not served:
        raise PackageIndexError(f"{project} {version} is not on {client.url}; published: "
                                f"{', '.join(client.versions(project)) or 'none'}")
    hashes = {}
    for f in served:
        digest = client.download_sha256(f)
        if f.sha256 and f.sha256 != digest:
            raise PackageIndexError(f"the index lists {f.filename} as {f.sha256} but serves {digest}; "
                                    "the file on the index changed, do not lock it")
        hashes[f.filename] = digest
    return format_lock(version, hashes, client.settings.simple_url, project)
