"""The embedded index (index/, pypiserver's protocol) as the release index: simple pages under
``simple/``, a version taken back with pypiserver's ``remove_pkg`` action, yanking (PEP 592)
through the index's ``+yank``/``+unyank``, and a file it already holds refused with HTTP 409
(so ``held_already`` keeps the base's answer: never); channels are the index's views
(``+promote``, ``channels/<channel>/simple/``). A release's uploads are served once it seals
them (``+seal``); the index's records of used numbers (``+versions``) and of abandoned releases
(``+take-back``) are read with the upload credential (index/release_routes.py). An index that
answers none of these (an older one, or stock pypiserver at INDEX_URL) serves files as they arrive."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse

from index.channels import Promotion
from pipeline.config import PACKAGE
from pipeline.errors import CredentialsRefused, PackageIndexError
from pipeline.indexes.base import CHANNEL_PAGE, Histories, IndexClient, UsedVersion

NOT_OFFERED = (404, 405, 501)  # an index without the action: stock pypiserver, or the index before it had it


class PypiserverClient(IndexClient):
    records_promotions = True
    def page_url(self, project: str = "") -> str:
        return f"{self.url}simple/{project + '/' if project else ''}"

    def compare_url(self, a: str, b: str, project: str = PACKAGE) -> str:
        """The registry's compare page (index/registry/)."""
        return f"{self.url}registry/{urllib.parse.quote(project, safe='')}/compare/" \
               f"{urllib.parse.quote(a, safe='')}/{urllib.parse.quote(b, safe='')}/"

    def remove_version(self, version: str, project: str = PACKAGE) -> None:
        """Delete every file of ``version`` (pypiserver's remove_pkg action)."""
        # pypiserver matches the name as its file names spell it, which is how builds spell it:
        # mymodel_onnx-1.1.1+titanic-py3-none-any.whl is project "mymodel_onnx" to remove_pkg, never "mymodel-onnx".
        form = urllib.parse.urlencode({":action": "remove_pkg", "name": project.replace("-", "_"),
                                       "version": version}).encode()
        try:
            self._request(self.url, data=form)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise PackageIndexError(f"could not remove {project} {version} from {self.url} (HTTP {exc.code}); "
                                        "remove its files from the index folder by hand") from None

    def set_yanked(self, version: str, yanked: bool, reason: str | None = None, project: str = PACKAGE) -> dict:
        """Yank ``version`` with ``reason`` (None: a version already yanked keeps its reason), or
        unyank it; the index's answer: the reason it had before (``previous``, None: not yanked), the
        versions it serves (``versions``) and those still installable by a range (``not_yanked``)."""
        action = "+yank" if yanked else "+unyank"
        fields = {"name": project, "version": version, **({"reason": reason} if reason is not None else {})}
        form = urllib.parse.urlencode(fields).encode()
        try:
            return json.loads(self._request(self.url + action, data=form))
        except urllib.error.HTTPError as exc:
            answer = exc.read()
            if exc.code == 404 and answer.startswith(b"{"):
                published = ", ".join(json.loads(answer).get("versions", [])) or "none"
                raise PackageIndexError(f"{project} {version} is not published on {self.url} (published: {published}); "
                                        "pass one of those as VERSION=") from None
            if exc.code == 400 and answer.startswith(b"{"):
                raise PackageIndexError(f"the index at {self.url} refused it: {json.loads(answer).get('error')}") from None
            if exc.code == 500 and answer.startswith(b"{"):
                raise PackageIndexError(f"the index at {self.url} could not record it: "
                                        f"{json.loads(answer).get('error')}") from None
            raise PackageIndexError(f"{self.url}{action} answered HTTP {exc.code}; this index may not support "
                                    "yanking (the local index does: make index), or check its log") from None

    def channel_url(self, channel: str) -> str:
        """The simple index of ``channel``'s view (index/channel_routes.py), for consumers."""
        return f"{self.url}channels/{channel}/simple/"

    def promote(self, channel: str, version: str, note: str = "", project: str = PACKAGE,
                built_from: str = "unknown") -> Promotion:
        """Make ``version`` the one ``channel`` serves (the index records who, when, the commit and the files)."""
        form = urllib.parse.urlencode({"channel": channel, "name": project, "version": version,
                                       "note": note}).encode()
        try:
            return Promotion.from_json(json.loads(self._request(self.url + "+promote", data=form))["promotion"])
        except urllib.error.HTTPError as exc:
            raise self._channel_error(exc, f"{self.url}+promote") from None

    def channel_histories(self, channel: str | None = None, page: int = 1,
                          limit: int | None = CHANNEL_PAGE) -> Histories:
        query = {"page": page, **({"channel": channel} if channel else {}),
                 **({"limit": limit} if limit is not None else {"all": 1})}
        url = f"{self.url}channels/?{urllib.parse.urlencode(query)}"
        try:
            answer = json.loads(self._request(url))
        except urllib.error.HTTPError as exc:
            raise self._channel_error(exc, f"{self.url}channels/") from None
        promotions = {name: [Promotion.from_json(fields) for fields in listed]
                      for name, listed in answer.get("channels", {}).items()}
        return Histories(promotions, answer.get("totals") or {name: len(listed) for name, listed in promotions.items()})

    def seal(self, version: str, files: dict[str, str]) -> None:
        """Ask the index to serve the release's uploaded files, all at once (it checks they are exactly
        what it holds for ``version``, with these sha256)."""
        form = urllib.parse.urlencode({"name": PACKAGE, "version": version, "files": json.dumps(files)}).encode()
        try:
            self._request(self.url + "+seal", data=form)
        except urllib.error.HTTPError as exc:
            if exc.code in NOT_OFFERED:
                return  # the index served each file as it arrived
            raise PackageIndexError(f"the index at {self.url} did not seal {PACKAGE} {version}: "
                                    f"{self._reason(exc)}") from None

    def used_versions(self, project: str | None = None) -> list[UsedVersion]:
        """The index's records of versions it stored but does not serve: staged (with their files and
        whether they are abandoned) and taken back."""
        url = self.url + "+versions" + (f"?{urllib.parse.urlencode({'name': project})}" if project else "")
        try:
            answer = json.loads(self._request(url))
        except CredentialsRefused:
            return []  # the read-only credential (make versions as a consumer): the served versions are all it sees
        except urllib.error.HTTPError as exc:
            if exc.code in NOT_OFFERED:
                return []
            raise PackageIndexError(f"{self.url}+versions answered HTTP {exc.code}: {self._reason(exc)}") from None
        return [UsedVersion(entry["project"], entry["version"], entry["state"], entry["changed"],
                            float(entry.get("age_seconds", 0)), bool(entry.get("abandoned")), dict(entry.get("files", {})))
                for entry in answer.get("versions", []) if entry.get("state") != "sealed"]

    def take_back_abandoned(self, version: str) -> list[str]:
        form = urllib.parse.urlencode({"name": PACKAGE, "version": version}).encode()
        try:
            return json.loads(self._request(self.url + "+take-back", data=form)).get("removed", [])
        except urllib.error.HTTPError as exc:
            raise PackageIndexError(f"the index at {self.url} did not take back {PACKAGE} {version}: "
                                    f"{self._reason(exc)}") from None

    @staticmethod
    def _reason(exc: urllib.error.HTTPError) -> str:
        """The one line an index action answered with: its JSON error, else the HTTP status."""
        answer = exc.read(64 * 1024)
        if answer.startswith(b"{"):
            try:
                return str(json.loads(answer).get("error") or f"HTTP {exc.code}")
            except ValueError:
                pass
        return f"HTTP {exc.code}"

    def _channel_error(self, exc: urllib.error.HTTPError, url: str) -> PackageIndexError:
        answer = exc.read(64 * 1024)
        if answer.startswith(b"{"):
            return PackageIndexError(f"the index at {self.url} refused it: {json.loads(answer).get('error')}")
        return PackageIndexError(f"{url} answered HTTP {exc.code}; this index serves no channels (the local "
                                 "index does: make index; devpi: INDEX=devpi), or check its log")
