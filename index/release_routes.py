"""A release's actions on the index (the upload credential), beside pypiserver's upload and ``remove_pkg``:

- ``POST /+seal`` (``name``, ``version``, ``files``: a JSON object file name -> sha256): the
  release's files, staged as they were uploaded (index/numbers.py), are served from now on, all
  at once. The index checks that ``files`` is exactly what it holds for that version of the
  package and its siblings (an sdist and a wheel of the package, a ``-onnx`` twin when the
  release built one), with those sha256, and refuses anything else with 409 and one line.
  Sealing a sealed version with the same files again answers 200 (a retried request); a seal of
  a project the index does not own answers 200 and changes nothing (its files were served as
  they arrived).
- ``GET /+versions`` (``name`` optional): every version of the index's own projects it stored a
  file of, its state (staged, sealed, taken back), when, and the files of those not sealed with
  their sha256; a staged one whose last upload is older than ``abandoned_after`` seconds
  (``INDEX_ABANDONED_AFTER``, index/settings.py) is marked abandoned.
- ``POST /+take-back`` (``name``, ``version``): removes an abandoned version (staged, its last
  upload older than the bound) and burns its number. A release in progress (younger) or a sealed
  version is refused (409): the check and the removal are one step under the folder's lock, so a
  release sealing meanwhile is never taken back.
"""

from __future__ import annotations

import json
import time
import typing as t
from pathlib import Path

from packaging.utils import canonicalize_name
from pypiserver.bottle_wrapper import Bottle, request, response

from index import owned_package
from index.numbers import SEALED, TAKEN_BACK, VersionStates, in_release, when
from index.settings import INDEX_READER
from index.statedb import StateError
from index.uploads import owned
from index.yanks import canonical_version

SEAL_FILES_LIMIT = 16  # files a seal may name (a release has three)
_SHA256 = frozenset("0123456789abcdef")


def _answer(status: int, content: dict) -> str:
    response.status = status
    response.content_type = "application/json"
    return json.dumps(content)


def _named_files(raw: str) -> dict[str, str] | None:
    """The seal's ``files`` field: file name -> lowercase hex sha256, or None when it is not that."""
    try:
        files = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(files, dict) or not 0 < len(files) <= SEAL_FILES_LIMIT:
        return None
    if not all(isinstance(name, str) and isinstance(digest, str) and len(digest) == 64 and set(digest) <= _SHA256
               for name, digest in files.items()):
        return None
    return files


class ReleaseRoutes:
    def __init__(self, backend: t.Any, states: VersionStates, forget: t.Callable[[], None],
                 abandoned_after: float) -> None:
        self.backend = backend  # index.digests.DigestCachingBackend: sees staged files too
        self.states = states
        self.forget = forget  # drops the kept pages
        self.abandoned_after = abandoned_after

    def _held(self, version: str) -> dict[str, t.Any]:
        """File name -> the file, of every project a release seals together, at ``version``."""
        return {Path(pkg.fn).name: pkg for pkg in self.backend.listed()
                if in_release(pkg.pkgname_norm) and canonical_version(pkg.version) == version}

    def _sha256(self, pkg: t.Any) -> str:
        return (self.backend.digest(pkg) or "").removeprefix("sha256=")

    def seal(self) -> str:
        package = owned_package.name()
        project = canonicalize_name(request.forms.get("name") or "")
        version = canonical_version(request.forms.get("version") or "")
        named = _named_files(request.forms.get("files") or "")
        if not owned(project):  # pypiserver's rule: served as it arrived, nothing to seal
            return _answer(200, {"name": project, "version": version, "sealed": [],
                                 "served": f"as uploaded: this index does not own {project[:80]}"})
        if project != package:
            return _answer(400, {"error": f"this index seals releases of {package}, not {project[:80]!r}"})
        if named is None:
            return _answer(400, {"error": f"files must be a JSON object of 1 to {SEAL_FILES_LIMIT} file names, "
                                          "each with its sha256 in lowercase hex"})
        try:
            with self.backend.placing():
                problem = self._seal_problem(package, version, named)
                if problem is None:
                    self.states.seal({(pkg.pkgname_norm, version) for pkg in self._held(version).values()})
        except StateError as exc:
            return _answer(500, {"error": str(exc)})
        if problem is not None:
            return _answer(409, {"error": problem})
        self.forget()
        return _answer(200, {"name": project, "version": version, "sealed": sorted(named)})

    def _seal_problem(self, package: str, version: str, named: dict[str, str]) -> str | None:
        """Why ``named`` cannot seal ``version`` (None: it can). The caller holds the folder's lock."""
        records = self.states.release_records(version)
        taken = next((r for r in records if r.state == TAKEN_BACK), None)
        if taken is not None:
            return (f"{package} {version} was taken back on {when(taken.changed)} ({taken.project}): its number is "
                    "burned; release the next version")
        held = self._held(version)
        shown = ", ".join(sorted(held)) or "no file"
        if set(held) != set(named):
            extra, missing = sorted(set(held) - set(named)), sorted(set(named) - set(held))
            if missing:
                return (f"{package} {version} cannot be sealed: the index does not hold {', '.join(missing)} "
                        f"(it holds {shown}); upload it first")
            return (f"{package} {version} cannot be sealed: the index also holds {', '.join(extra)}, which the "
                    "release did not name (uploaded by someone else?); the version is not served: release the next "
                    "one (make release takes this one back once abandoned)")
        kinds = sorted(("sdist" if name.endswith(".tar.gz") else "wheel") for name, pkg in held.items()
                       if pkg.pkgname_norm == package)
        if kinds != ["sdist", "wheel"]:
            return (f"{package} {version} cannot be sealed: a release is one sdist and one wheel of {package} "
                    f"(and its -onnx twin), the index holds {shown}")
        for name, pkg in sorted(held.items()):
            digest = self._sha256(pkg)
            if digest != named[name]:
                return f"{package} {version} cannot be sealed: {name} has sha256 {digest} on the index, not {named[name]}"
        return None

    def versions(self) -> str:
        if request.auth and request.auth[0] == INDEX_READER:
            return _answer(403, {"error": f"{INDEX_READER} is a read-only credential: the index's records of "
                                          "unpublished versions are read with the upload credential"})
        name = request.query.get("name") or None
        now = time.time()
        try:
            records = self.states.records(canonicalize_name(name) if name else None)
        except StateError as exc:
            return _answer(500, {"error": str(exc)})
        unsealed = {(r.project, r.version) for r in records if r.state != SEALED}
        files: dict[tuple[str, str], dict[str, str]] = {}
        if unsealed:
            for pkg in self.backend.listed():
                key = (pkg.pkgname_norm, canonical_version(pkg.version))
                if key in unsealed:
                    files.setdefault(key, {})[Path(pkg.fn).name] = self._sha256(pkg)
        listed = [{**r.as_json(now, self.abandoned_after), "files": files.get((r.project, r.version), {})}
                  for r in records]
        return _answer(200, {"abandoned_after": self.abandoned_after, "now": when(now), "versions": listed})

    def take_back(self) -> str:
        package = owned_package.name()
        project = canonicalize_name(request.forms.get("name") or "")
        version = canonical_version(request.forms.get("version") or "")
        if project != package:
            return _answer(400, {"error": f"this index takes back releases of {package}, not {project[:80]!r}"})
        try:
            with self.backend.placing():
                records = self.states.release_records(version)
                age = time.time() - max((r.changed for r in records), default=0.0)
                if not records:
                    return _answer(404, {"error": f"{package} {version}: the index stored no file of it"})
                if any(r.state == SEALED for r in records):
                    return _answer(409, {"error": f"{package} {version} is sealed: a published version is taken back "
                                                  "by the release that published it (remove_pkg), not as abandoned"})
                if all(r.state == TAKEN_BACK for r in records):
                    return _answer(200, {"name": package, "version": version, "removed": [], "already": True})
                if age < self.abandoned_after:
                    return _answer(409, {"error": f"{package} {version} is not abandoned: its last upload was "
                                                  f"{age:.0f} s ago, under {self.abandoned_after:.0f} s (a release "
                                                  "in progress); leave it to that release"})
                held = self._held(version)
                for pkg in held.values():
                    self.backend.remove_placed(pkg)
                for record in records:
                    self.states.take_back(record.project, version)
        except StateError as exc:
            return _answer(500, {"error": str(exc)})
        self.forget()
        return _answer(200, {"name": package, "version": version, "removed": sorted(held)})


def install(app: Bottle, backend: t.Any, states: VersionStates, forget: t.Callable[[], None],
            abandoned_after: float) -> ReleaseRoutes:
    from index.simple import protected

    config = app._pypiserver_config
    routes = ReleaseRoutes(backend, states, forget, abandoned_after)
    update = protected(config, "update")
    app.route("/+seal", "POST", update(routes.seal))
    app.route("/+versions", "GET", update(routes.versions))
    app.route("/+take-back", "POST", update(routes.take_back))
    return routes
