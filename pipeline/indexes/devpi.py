"""devpi-server as the release index: ``INDEX_URL=http://host:port/<user>/<index>/``.

Same questions as the embedded index, devpi's answers: simple pages under ``+simple/``,
a version taken back with ``DELETE <index>/<project>/<version>?force`` as its owner
(a token from ``POST /+login``), a file it already held answered with HTTP 200 (not
409), and no yanking on private indexes.

A channel is the devpi index ``<user>/<channel>`` (bases=[], made by root: ``make devpi``
makes ``prod``, ``make devpi-channel CHANNEL=`` others), read from the replicas like the
release index. A promotion pushes the version there (devpi's ``push``) and then deletes
every other version of the package from it (devpi keeps what was pushed before), so the
channel index offers the promoted version only, a rolled-back one included. devpi keeps
no record of who promoted when: ``make channels`` shows the version each channel serves.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from index.channels import Promotion
from pipeline.config import HTTP_TIMEOUT, PACKAGE
from pipeline.errors import ConfigError, PackageIndexError
from pipeline.index_api import IndexClient, ServedFile


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

    @property
    def _user_and_index(self) -> tuple[str, str]:
        user, index = urllib.parse.urlsplit(self.url).path.strip("/").split("/")[:2]
        return user, index

    def _channel_index(self, channel: str) -> str:
        user, index = self._user_and_index
        if channel == index:
            raise ConfigError(f"CHANNEL={channel} is the release index {user}/{index} itself; choose another channel name")
        return f"{user}/{channel}"

    def channel_url(self, channel: str) -> str:
        """The channel index's simple pages on the replica (INDEX_READ_URL), else on the primary."""
        base = self.settings.read_url or self.page_url()
        return base.rstrip("/").removesuffix("/+simple").rsplit("/", 1)[0] + f"/{channel}/+simple/"

    def promote(self, channel: str, version: str, commit: str, by: str, project: str = PACKAGE) -> Promotion:
        target = self._channel_index(channel)
        channel_page = f"{self.server}/{target}/+simple/"
        try:
            self._devpi_call("GET", f"{self.server}/{target}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise PackageIndexError(f"devpi at {self.server} has no channel index {target}; create it (as root): "
                                        f"make devpi-channel CHANNEL={channel}") from None
            raise PackageIndexError(f"devpi at {self.server} answered HTTP {exc.code} for {target}; check its log") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                    "start it (make devpi) or check INDEX_URL") from None
        auth = self._login()
        served = self._files_on(f"{channel_page}{project}/")
        try:
            if not any(f.version == version for f in served):  # devpi's push: a JSON POST to the source index
                self._devpi_call("POST", self.url.rstrip("/"), {"name": project, "version": version,
                                                               "targetindex": target}, auth=auth)
            for other in sorted({f.version for f in served} - {version}):
                self._devpi_call("DELETE", f"{self.server}/{target}/{project}/{urllib.parse.quote(other)}?force",
                                 auth=auth)
        except urllib.error.HTTPError as exc:
            raise PackageIndexError(f"devpi refused the promotion of {project} {version} to {target} (HTTP {exc.code}: "
                                    f"{exc.read(300).decode(errors='replace').strip()}); check the primary's log") from None
        files = [f for f in self.files(project) if f.version == version]
        self._wait_for_channel(channel, version, files, project)
        return Promotion(0, version, "-", self.username or "-", by, commit)

    def _wait_for_channel(self, channel: str, version: str, files: list[ServedFile], project: str) -> None:
        """Until the channel's readers (the replica with INDEX_READ_URL) serve exactly ``files``."""
        if not self.settings.read_url:
            return
        url = self.channel_url(channel)
        expected = {f.filename: f.sha256 for f in files}
        self._wait_until(lambda: {f.filename: f.sha256 for f in self._files_on(f"{url}{project}/")} == expected,
                         f"{url}{project}/", f"{project} {version} alone")
        print(f"read back {version} from {url}: the only version the channel serves", flush=True)

    def channel_histories(self) -> dict[str, list[Promotion]]:
        """Each channel index of the index owner with the version it serves (devpi keeps no history)."""
        user, release_index = self._user_and_index
        try:
            indexes = json.loads(self._devpi_call("GET", f"{self.server}/{user}"))["result"].get("indexes", {})
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            raise PackageIndexError(f"devpi at {self.server} did not list the indexes of {user} ({exc}); "
                                    "check INDEX_URL") from None
        histories = {}
        for name in sorted(indexes):
            if name == release_index:
                continue
            versions = sorted({f.version for f in self._files_on(f"{self.server}/{user}/{name}/+simple/{PACKAGE}/")})
            if versions:
                histories[name] = [Promotion(0, version, "-", "-", "-", "-") for version in versions]
        return histories
