"""devpi-server as the release index: ``INDEX_URL=http://host:port/<user>/<index>/``.

Same questions as the embedded index, devpi's answers: simple pages under ``+simple/``,
a version taken back with ``DELETE <index>/<project>/<version>?force`` as its owner
(a token from ``POST /+login``), a file it already held answered with HTTP 200 (not
409), and no yanking on private indexes.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from pipeline.config import HTTP_TIMEOUT, PACKAGE
from pipeline.errors import PackageIndexError
from pipeline.indexes.base import IndexClient


class DevpiClient(IndexClient):
    def page_url(self, project: str = "") -> str:
        return f"{self.url}+simple/{project + '/' if project else ''}"

    @property
    def server(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def _devpi_call(self, method: str, url: str, body: dict | None = None, auth: str | None = None) -> bytes:
        request = urllib.request.Request(url, method=method, headers={"Accept": "application/json"},
                                         data=json.dumps(body).encode() if body is not None else None)
        if auth:
            request.add_header("X-Devpi-Auth", auth)
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.read()

    def _login(self) -> str:
        """The X-Devpi-Auth header value: base64 of ``user:<token>``."""
        if not (self.username and self.password):
            raise PackageIndexError(f"no credentials for {self.url}: set INDEX_USERNAME and INDEX_PASSWORD "
                                    "(the index owner's; make devpi writes them to index/.state/devpi/credentials.json)")
        try:
            answer = self._devpi_call("POST", f"{self.server}/+login", {"user": self.username, "password": self.password})
        except urllib.error.HTTPError as exc:
            raise PackageIndexError(f"devpi at {self.server} refused the login of {self.username} (HTTP {exc.code}); "
                                    "check INDEX_USERNAME/INDEX_PASSWORD") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                    "start it (make devpi) or check INDEX_URL") from None
        token = json.loads(answer)["result"]["password"]
        return base64.b64encode(f"{self.username}:{token}".encode()).decode()

    def remove_version(self, version: str, project: str = PACKAGE) -> None:
        """Delete every file of ``version``; ``?force`` because the index is non-volatile."""
        url = f"{self.url}{project}/{urllib.parse.quote(version)}?force"
        try:
            self._devpi_call("DELETE", url, auth=self._login())
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise PackageIndexError(f"could not remove {project} {version} from {self.url} (HTTP {exc.code}); "
                                        f"remove it as the index owner: DELETE {url}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                    f"remove {project} {version} once it answers") from None

    def held_already(self, answer: str) -> bool:
        # A non-volatile index answers a byte-identical re-upload with HTTP 200 and this reason;
        # a changed one with 409, a new file with 200 and an empty body.
        return "Upload of identical file" in answer

    def set_yanked(self, version: str, yanked: bool, reason: str | None = None, project: str = PACKAGE) -> dict:
        raise PackageIndexError(f"devpi does not support yanking on private indexes ({self.url}); "
                                "remove the version instead, or publish a fixed one and pin it")
