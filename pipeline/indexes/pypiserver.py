"""The embedded index (index/, pypiserver's protocol) as the release index: simple pages under
``simple/``, a version taken back with pypiserver's ``remove_pkg`` action, yanking (PEP 592)
through the index's ``+yank``/``+unyank``, and a file it already holds refused with HTTP 409
(so ``held_already`` keeps the base's answer: never); channels are the index's views
(``+promote``, ``channels/<channel>/simple/``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse

from index.channels import Promotion
from pipeline.config import PACKAGE
from pipeline.errors import PackageIndexError
from pipeline.indexes.base import IndexClient


class PypiserverClient(IndexClient):
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
            if exc.code == 500 and answer.startswith(b"{"):
                raise PackageIndexError(f"the index at {self.url} could not record it: "
                                        f"{json.loads(answer).get('error')}") from None
            raise PackageIndexError(f"{self.url}{action} answered HTTP {exc.code}; this index may not support "
                                    "yanking (the local index does: make index), or check its log") from None

    def channel_url(self, channel: str) -> str:
        """The simple index of ``channel``'s view (index/channel_routes.py), for consumers."""
        return f"{self.url}channels/{channel}/simple/"

    def promote(self, channel: str, version: str, commit: str, by: str, project: str = PACKAGE) -> Promotion:
        """Make ``version`` the one ``channel`` serves (the index records who, when and ``commit``)."""
        form = urllib.parse.urlencode({"channel": channel, "name": project, "version": version,
                                       "commit": commit, "by": by}).encode()
        try:
            return Promotion(**json.loads(self._request(self.url + "+promote", data=form))["promotion"])
        except urllib.error.HTTPError as exc:
            raise self._channel_error(exc, f"{self.url}+promote") from None

    def channel_histories(self) -> dict[str, list[Promotion]]:
        """Each channel's promotions, oldest first."""
        try:
            answer = json.loads(self._request(self.url + "channels/"))
        except urllib.error.HTTPError as exc:
            raise self._channel_error(exc, f"{self.url}channels/") from None
        return {name: [Promotion(**fields) for fields in promotions]
                for name, promotions in answer.get("channels", {}).items()}

    def _channel_error(self, exc: urllib.error.HTTPError, url: str) -> PackageIndexError:
        answer = exc.read(64 * 1024)
        if answer.startswith(b"{"):
            return PackageIndexError(f"the index at {self.url} refused it: {json.loads(answer).get('error')}")
        return PackageIndexError(f"{url} answered HTTP {exc.code}; this index serves no channels (the local "
                                 "index does: make index; devpi: INDEX=devpi), or check its log")
