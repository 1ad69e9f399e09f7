"""Every write route of the index, checked against the credential's role and scope, and audited.

``install`` wraps, after every route is in place, pypiserver's ``POST /`` (upload, remove) and
our ``/+seal``, ``/+take-back``, ``/+yank``, ``/+unyank`` and ``/+promote``: once the credential
is authenticated (the route's own check still answers 401/403 for a missing or wrong one), the
action and its project are read from the request (an upload's project from its file name: what
the index will list it under, whatever the ``name`` field says) and index/access.py decides; a
refusal is 403 with one line. A write that succeeded is appended to the audit log
(index/audit.py) with the authenticated name and the socket's client address; an upload with the
stored file's sha256, which the backend computed while writing it (index/digests.py).
"""

from __future__ import annotations

import functools
import hashlib
import typing as t

from packaging.utils import canonicalize_name
from pypiserver.bottle_wrapper import Bottle, HTTPError, request, response
from pypiserver.pkg_helpers import guess_pkgname_and_version

from index.access import CredentialAuther, refusal
from index.audit import AuditLog
from index.statedb import StateDB
from index.yanks import canonical_version

CREDENTIAL_KEY = "index.credential"  # the WSGI environ key holding the authenticated credential's name
ROUTES = {"/+seal": "seal", "/+take-back": "take-back", "/+yank": "yank", "/+unyank": "unyank",
          "/+promote": "promote"}
PYPISERVER_ACTIONS = {"file_upload": "upload", "remove_pkg": "remove"}


def authenticated_name() -> str:
    """The credential the current write was checked against (the channel history's "who")."""
    return request.environ.get(CREDENTIAL_KEY) or "anonymous"


def _upload_file() -> t.Any:
    return request.files.get("content")


def _what(rule: str) -> tuple[str, str, str]:
    """(action, project, version) of the request on ``rule``."""
    if rule == "/":
        raw = request.forms.get(":action") or ""
        action = PYPISERVER_ACTIONS.get(raw, raw or "upload")
        if action == "upload":
            upload = _upload_file()
            guessed = guess_pkgname_and_version(upload.raw_filename) if upload is not None else None
            return action, guessed[0] if guessed else "", guessed[1] if guessed else ""
        return action, request.forms.get("name") or "", request.forms.get("version") or ""
    return ROUTES[rule], request.forms.get("name") or "", request.forms.get("version") or ""


def _received_sha256(upload: t.Any) -> str:
    digest = hashlib.sha256()
    upload.file.seek(0)
    for block in iter(lambda: upload.file.read(2**20), b""):
        digest.update(block)
    return digest.hexdigest()


def _detail(action: str, stored_sha256: t.Callable[[str], str | None]) -> dict:
    if action == "upload":
        upload = _upload_file()
        # The digest the backend kept while storing the file: its bytes are not read again. Only a file
        # gone or changed since (or an index hashing with another algorithm) costs a second read.
        digest = stored_sha256(upload.raw_filename) or _received_sha256(upload)
        return {"file": upload.raw_filename, "sha256": digest}
    if action == "yank":
        return {"reason": request.forms.getunicode("reason")}
    if action == "promote":
        return {"channel": request.forms.get("channel") or "", "note": request.forms.getunicode("note") or ""}
    return {}


def install(app: Bottle, auther: CredentialAuther, db: StateDB, audit: AuditLog,
            stored_sha256: t.Callable[[str], str | None]) -> None:
    """``stored_sha256``: an uploaded file's sha256 as the backend stored it (None: unknown)."""
    def guarded(rule: str, handler: t.Callable) -> t.Callable:
        @functools.wraps(handler)
        def checked(*args: t.Any, **kwargs: t.Any) -> t.Any:
            if not request.auth or request.auth[1] is None or not auther(*request.auth):
                return handler(*args, **kwargs)  # its own check answers 401 or 403
            credential = auther.credential(request.auth[0])
            action, project, version = _what(rule)
            project = canonicalize_name(project) if project else ""
            version = canonical_version(version) if version else ""
            why = refusal(db, credential, action, project, version) if credential else "the credential was revoked"
            if why is not None:
                raise HTTPError(403, why)
            request.environ[CREDENTIAL_KEY] = credential.name
            answer = handler(*args, **kwargs)
            if response.status_code < 400 and action in (*ROUTES.values(), *PYPISERVER_ACTIONS.values()):
                audit.append(credential.name, request.environ.get("REMOTE_ADDR") or "unknown", action, project,
                             version, _detail(action, stored_sha256))
            return answer
        return checked

    for route in list(app.routes):
        if route.method == "POST" and (route.rule == "/" or route.rule in ROUTES):
            app.route(route.rule, "POST", guarded(route.rule, route.call))
