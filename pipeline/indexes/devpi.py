"""devpi-server as the release index: ``INDEX_URL=http://host:port/<user>/<index>/``.

Same questions as the embedded index, devpi's answers: simple pages under ``+simple/``,
a file it already held answered with HTTP 200 (not 409), and no yanking on private indexes.

A number is used once here too, kept by the pipeline since devpi accepts a file name again
after a forced delete: a version is taken back with ``DELETE <index>/<project>/<version>?force``
as the index owner (a token from ``POST /+login``), then registered again without files, with
"taken back by make release on <when>" as its description. Every registered version without files is a used number (``used_versions``),
which no clone's release publishes again. devpi serves each file as it arrives: there is no
seal, and a release killed between two uploads leaves a half version that pip can see until
that clone's next release takes it back.

A channel is the devpi index ``<user>/<channel>`` (bases=[], made by root: ``make devpi``
makes ``prod``, ``make devpi-channel CHANNEL=`` others), read from the replicas like the
release index. A promotion pushes the version there (devpi's ``push``) and then deletes
every other version of the package from it (devpi keeps what was pushed before), so the
channel index offers the promoted version only, a rolled-back one included. devpi keeps
no record of who promoted when, and only root may change an index: the history (number,
version, when, who, commit) is written into the channel index's record of the promoted
version (its description), carried over at each promotion.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from index.channels import Promotion, clean_field
from index.uploads import owned
from pipeline.config import HTTP_TIMEOUT, PACKAGE
from pipeline.errors import ConfigError, PackageIndexError
from pipeline.indexes.base import CHANNEL_PAGE, Histories, IndexClient, ServedFile, UsedVersion


# The first line of the description of a version in a channel index that carries the channel's history
# (one JSON promotion a line after it): devpi keeps no record of its own, and its owner may not change an index.
HISTORY_HEADING = "channel history, written by make promote"
# The description of a version whose files make release deleted: its number is burned.
TAKEN_BACK = "taken back by make release on "


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
        """Delete every file of ``version`` (``?force``: the index is non-volatile), then register the version
        again without files, marked taken back: devpi would take the same file names again, so the registered
        version is what tells every clone the number is used."""
        url = f"{self.url}{project}/{urllib.parse.quote(version)}"
        try:
            auth = self._login()
            try:
                versiondata = json.loads(self._devpi_call("GET", url)).get("result", {})
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return
                raise
            self._devpi_call("DELETE", f"{url}?force", auth=auth)  # its files, and the version with its last one
            taken = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._register(self.url.rstrip("/").removeprefix(self.server).strip("/"), versiondata,
                           TAKEN_BACK + taken, auth)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise PackageIndexError(f"could not remove {project} {version} from {self.url} (HTTP {exc.code}); "
                                        f"remove its files as the index owner: DELETE <file URL>?force") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                    f"remove {project} {version} once it answers") from None

    def used_versions(self, project: str | None = None) -> list[UsedVersion]:
        """Registered versions without files: taken back by a release (or registered and never uploaded)."""
        found = []
        for name in [project] if project else [PACKAGE, f"{PACKAGE}-onnx"]:
            try:
                versions = json.loads(self._devpi_call("GET", f"{self.url}{name}")).get("result", {})
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    continue
                raise PackageIndexError(f"devpi at {self.url} answered HTTP {exc.code} for {name}; check its log") from None
            except (urllib.error.URLError, OSError) as exc:
                raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                        "start it (make devpi) or check INDEX_URL") from None
            for version, data in versions.items() if isinstance(versions, dict) else ():
                if not isinstance(data, dict) or any(link.get("rel") == "releasefile" for link in data.get("+links", [])):
                    continue
                description = str(data.get("description") or "")
                when = description.removeprefix(TAKEN_BACK) if description.startswith(TAKEN_BACK) else "-"
                found.append(UsedVersion(name, version, "taken back", when))
        return found

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

    def promote(self, channel: str, version: str, note: str = "", project: str = PACKAGE,
                built_from: str = "unknown") -> Promotion:
        """devpi keeps no record of a promotion: the pipeline writes it, with ``built_from`` (the commit
        the caller read from the version's wheel) and the credential's user."""
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
        history = self._history(target, project)
        pins = {name: {f.filename: f.sha256 or "" for f in self.files(name) if f.version == version}
                for name in (project, f"{project}-onnx")}
        promotion = Promotion(len(history) + 1, version, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              self.username or "-", clean_field(built_from), clean_field(note),
                              {name: files for name, files in pins.items() if files})
        # the package and its <package>-* siblings (-onnx, -data) released at that version
        projects = [name for name in self.projects() if owned(name, project)]
        try:
            for name in projects:
                released = any(f.version == version for f in self.files(name))
                served = {f.version for f in self._files_on(f"{channel_page}{name}/")}
                if released and version not in served:  # devpi's push: a JSON POST to the source index
                    self._devpi_call("POST", self.url.rstrip("/"), {"name": name, "version": version,
                                                                   "targetindex": target}, auth=auth)
                if name == project:
                    self._record(target, project, version, [*history, promotion], auth)
                for other in sorted(served - {version}):
                    self._devpi_call("DELETE", f"{self.server}/{target}/{name}/{urllib.parse.quote(other)}?force",
                                     auth=auth)
        except urllib.error.HTTPError as exc:
            raise PackageIndexError(f"devpi refused the promotion of {project} {version} to {target} (HTTP {exc.code}: "
                                    f"{exc.read(300).decode(errors='replace').strip()}); check the primary's log") from None
        files = [f for f in self.files(project) if f.version == version]
        self._wait_for_channel(channel, version, files, project)
        return promotion

    def _history(self, index: str, project: str) -> list[Promotion]:
        """The promotions recorded in the channel index: the longest history among its versions' records."""
        try:
            versions = json.loads(self._devpi_call("GET", f"{self.server}/{index}/{project}")).get("result", {})
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise
        found: list[list[Promotion]] = [[]]
        for metadata in versions.values():
            description = metadata.get("description") or "" if isinstance(metadata, dict) else ""
            head, _, lines = str(description).partition("\n")
            if head == HISTORY_HEADING:
                try:
                    found.append([Promotion.parse(line) for line in lines.splitlines() if line.strip()])
                except (ValueError, KeyError, TypeError):
                    continue  # a record someone else wrote: not ours to read
        return max(found, key=len)

    def _record(self, index: str, project: str, version: str, history: list[Promotion], auth: str) -> None:
        """Write the history into the channel index's record of ``version``."""
        self._describe(index, project, version, HISTORY_HEADING + "\n" + "".join(p.line() for p in history), auth)

    def _describe(self, index: str, project: str, version: str, description: str, auth: str) -> None:
        """Set the description of ``version`` in ``index`` (devpi's register action overwrites a version's
        metadata: the metadata it holds is sent back with the new description)."""
        metadata = json.loads(self._devpi_call("GET", f"{self.server}/{index}/{project}/{urllib.parse.quote(version)}"))
        self._register(index, metadata["result"], description, auth)

    def _register(self, index: str, metadata: dict, description: str, auth: str) -> None:
        """devpi's register action: ``metadata`` (a version's, as devpi answers it) with ``description``."""
        form = {key: value for key, value in metadata.items() if not key.startswith("+") and value not in (None, "", [])}
        form.update({":action": "submit", "description_content_type": "text/plain", "description": description})
        request = urllib.request.Request(f"{self.server}/{index}/", method="POST",
                                         data=urllib.parse.urlencode(form, doseq=True).encode(),
                                         headers={"X-Devpi-Auth": auth, "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            response.read()

    def _wait_for_channel(self, channel: str, version: str, files: list[ServedFile], project: str) -> None:
        """Until the channel's readers (the replica with INDEX_READ_URL) serve exactly ``files``."""
        if not self.settings.read_url:
            return
        url = self.channel_url(channel)
        expected = {f.filename: f.sha256 for f in files}
        self._wait_until(lambda: {f.filename: f.sha256 for f in self._files_on(f"{url}{project}/")} == expected,
                         f"{url}{project}/", f"{project} {version} alone")
        print(f"read back {version} from {url}: the only version the channel serves", flush=True)

    def channel_histories(self, channel: str | None = None, page: int = 1,
                          limit: int | None = CHANNEL_PAGE) -> Histories:
        """Each channel index of the index owner: the history recorded in it (the version it serves when
        it holds none, numbered 0)."""
        histories = self._channel_histories()
        if channel:
            histories = {channel: histories[channel]} if channel in histories else {}
        if limit is None:
            return Histories(histories, {name: len(listed) for name, listed in histories.items()})
        return Histories({name: listed[max(0, len(listed) - page * limit):len(listed) - (page - 1) * limit]
                          for name, listed in histories.items()},
                         {name: len(listed) for name, listed in histories.items()})

    def _channel_histories(self) -> dict[str, list[Promotion]]:
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
            served = sorted({f.version for f in self._files_on(f"{self.server}/{user}/{name}/+simple/{PACKAGE}/")})
            if served:
                histories[name] = self._history(f"{user}/{name}", PACKAGE) or [
                    Promotion(0, version, "-", "-", "-") for version in served]
        return histories
