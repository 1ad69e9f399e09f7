"""devpi-server as the release index: ``INDEX_URL=http://host:port/<user>/<index>/``.

Same questions as the embedded index, devpi's answers: simple pages under ``+simple/``,
a file it already held answered with HTTP 200 (not 409), and no yanking on private indexes.

devpi serves each file as it arrives, so a release's files go to the staging index
``<user>/<index>.staging`` first (bases=[], made by ``make devpi``; made by the owner where
devpi lets owners create indexes) and its seal is devpi's push to ``<user>/<index>``: one
request, one write transaction (one serial, replicas included), so consumers see every file of
the version or none. The -onnx twin is pushed before the model package, whose arrival is the
version's. Staging keeps what it pushed: a racing release's upload of a file it holds is
answered "identical" (or 409) as on one index, so the first sdist up still owns the version.
A version staged and not on the release index is a release in progress, abandoned once its last
upload is older than INDEX_ABANDONED_AFTER: the next release of any clone takes it back.

A number is used once here too, kept by the pipeline since devpi accepts a file name again
after a forced delete: a version is taken back with ``DELETE <index>/<project>/<version>?force``
as the index owner (a token from ``POST /+login``), on the release and the staging index, then
registered again in the release index without files, with "taken back by make release on
<when>" as its description. Every registered version without files is a used number
(``used_versions``), which no clone's release publishes again.

A channel is the devpi index ``<user>/<channel>`` (bases=[], made by root: ``make devpi``
makes ``prod``, ``make devpi-channel CHANNEL=`` others), read from the replicas like the
release index. A promotion pushes the version there (devpi's ``push``) and then deletes
every other version of the package from it (devpi keeps what was pushed before), so the
channel index offers the promoted version only, a rolled-back one included. devpi keeps
no record of who promoted when, and only root may change an index: the history (number,
version, when, who, commit, the sha256 of every file pushed) is written into the channel
index's record of the promoted version (its description) and of the version ``0+channel.history``
registered there without files (which no upload overwrites), carried over at each promotion.
devpi serves whatever the channel index holds: ``check_channel`` (make channels, make consumer
CHANNEL=, make promote) fails closed when it lists other files or sha256 than the newest promotion pinned.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from packaging.utils import canonicalize_name

from index.channels import Promotion, clean_field
from index.control import abandoned_after
from index.devpi import STAGING_SUFFIX
from index.uploads import owned
from pipeline.config import HTTP_TIMEOUT, PACKAGE
from pipeline.errors import ConfigError, PackageIndexError
from pipeline.indexes.base import CHANNEL_PAGE, Histories, IndexClient, UsedVersion, project_of


# The first line of the description of a version in a channel index that carries the channel's history
# (one JSON promotion a line after it): devpi keeps no record of its own, and its owner may not change an index.
HISTORY_HEADING = "channel history, written by make promote"
# A version registered without files in each channel index whose description carries the history too: an upload
# to the channel index overwrites the description of the version it adds a file to, never this one.
HISTORY_VERSION = "0+channel.history"
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

    @property
    def _release_index(self) -> str:
        """``<user>/<index>``"""
        return "/".join(self._user_and_index)

    @property
    def _staging_index(self) -> str:
        return self._release_index + STAGING_SUFFIX

    @property
    def upload_url(self) -> str:
        """The staging index (created here when missing and devpi lets the owner create indexes)."""
        staging = f"{self.server}/{self._staging_index}"
        try:
            self._devpi_call("GET", staging)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise PackageIndexError(f"devpi at {self.server} answered HTTP {exc.code} for {self._staging_index}; "
                                        "check its log") from None
            try:
                self._devpi_call("PUT", staging, {"bases": [], "volatile": False, "type": "stage"}, self._login())
            except urllib.error.HTTPError as refused:
                raise PackageIndexError(
                    f"devpi at {self.server} has no staging index {self._staging_index}, where a release's files wait "
                    f"until every one is there, and may not create it (HTTP {refused.code}); create it as root "
                    f"(make devpi adds it to a running pair) with bases [], then run make release again") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                    "start it (make devpi) or check INDEX_URL") from None
        return staging + "/"

    def seal(self, version: str, files: dict[str, str]) -> None:
        """devpi's push of each project's ``version`` from the staging index to the release index: one
        transaction each, the model package last (its arrival is the version's)."""
        auth = self._login()
        projects = sorted({project_of(name) for name in files}, key=lambda name: name == canonicalize_name(PACKAGE))
        for project in projects:
            try:
                self._devpi_call("POST", f"{self.server}/{self._staging_index}",
                                 {"name": project, "version": version, "targetindex": self._release_index}, auth)
            except urllib.error.HTTPError as exc:
                why = exc.read(300).decode(errors="replace").strip()
                raise PackageIndexError(
                    f"devpi did not push {project} {version} from {self._staging_index} to {self._release_index} "
                    f"(HTTP {exc.code}: {why}); " + ("another release published it first: run make release again"
                                                     if exc.code == 409 else "check the primary's log")) from None
            except (urllib.error.URLError, OSError) as exc:
                raise PackageIndexError(f"the index at {self.url} went away while {version} was pushed to it "
                                        f"({getattr(exc, 'reason', exc)}); start it and run make release again") from None

    def remove_version(self, version: str, project: str = PACKAGE) -> None:
        """Delete every file of ``version`` (``?force``: the indexes are non-volatile) from the release and the
        staging index, then register the version again in the release index without files, marked taken back:
        devpi would take the same file names again, so the registered version tells every clone the number is used."""
        try:
            auth = self._login()
            metadata = None
            for index in (self._release_index, self._staging_index):
                url = f"{self.server}/{index}/{project}/{urllib.parse.quote(version)}"
                try:
                    found = json.loads(self._devpi_call("GET", url)).get("result", {})
                except urllib.error.HTTPError as exc:
                    if exc.code == 404:
                        continue
                    raise
                metadata = metadata or found
                self._devpi_call("DELETE", f"{url}?force", auth=auth)  # its files, and the version with its last one
            if metadata is not None:
                taken = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._register(self._release_index, metadata, TAKEN_BACK + taken, auth)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise PackageIndexError(f"could not remove {project} {version} from {self.url} (HTTP {exc.code}); "
                                        f"remove its files as the index owner: DELETE <file URL>?force") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                    f"remove {project} {version} once it answers") from None

    def take_back_abandoned(self, version: str) -> list[str]:
        removed = []
        for project in (PACKAGE, f"{PACKAGE}-onnx"):
            held = self.held(version, project)
            if held:
                self.remove_version(version, project)
                removed += sorted(held)
        return removed

    def _registered(self, index: str, project: str) -> dict[str, dict]:
        """Version -> devpi's record of it (its metadata and ``+links``) in ``index``."""
        try:
            versions = json.loads(self._devpi_call("GET", f"{self.server}/{index}/{project}")).get("result", {})
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return {}
            raise PackageIndexError(f"devpi at {self.url} answered HTTP {exc.code} for {project}; check its log") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PackageIndexError(f"the index at {self.url} is unreachable ({getattr(exc, 'reason', exc)}); "
                                    "start it (make devpi) or check INDEX_URL") from None
        return {v: data for v, data in versions.items() if isinstance(data, dict)} if isinstance(versions, dict) else {}

    def used_versions(self, project: str | None = None) -> list[UsedVersion]:
        """Registered versions without files on the release index (taken back by a release, or registered and
        never uploaded), and versions on the staging index the release index does not hold (staged)."""
        found = []
        bound, now = abandoned_after(), datetime.now(timezone.utc)
        for name in [project] if project else [PACKAGE, f"{PACKAGE}-onnx"]:
            released = self._registered(self._release_index, name)
            for version, data in released.items():
                if _release_files(data):
                    continue
                description = str(data.get("description") or "")
                when = description.removeprefix(TAKEN_BACK) if description.startswith(TAKEN_BACK) else "-"
                found.append(UsedVersion(name, version, "taken back", when))
            for version, data in self._registered(self._staging_index, name).items():
                files = _release_files(data)
                if not files or version in released:
                    continue
                stored = max((_logged(link) for link in data.get("+links", []) if link.get("rel") == "releasefile"),
                             default=now)
                age = max(0.0, (now - stored).total_seconds())
                found.append(UsedVersion(name, version, "staged", stored.strftime("%Y-%m-%dT%H:%M:%SZ"), age,
                                         age >= bound, files))
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
        for name in projects:  # a number re-used or a file replaced since it was pushed there: never re-pinned
            held = {f.filename: f.sha256 for f in self._files_on(f"{channel_page}{name}/") if f.version == version}
            if held and held != pins.get(name, {}):
                raise PackageIndexError(
                    f"the channel index {target} already holds {name} {version} with other files or bytes than "
                    f"{self._release_index} serves ({', '.join(sorted(held))}): nobody promoted those; delete them "
                    f"from {target} (DELETE {self.server}/{target}/{name}/{version}?force as the owner), then promote again")
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
        self._wait_for_channel(channel, promotion)
        self.check_channel(channel, promotion)
        return promotion

    def check_channel(self, channel: str, promotion: Promotion | None = None) -> None:
        """Fail closed unless the channel index (and its replica, with INDEX_READ_URL) lists exactly the files
        and sha256 that ``promotion`` (by default the newest one it records) pinned: devpi serves whatever its
        index holds, so a file replaced or a number re-used there since the promotion must stop every reader."""
        target = self._channel_index(channel)
        if promotion is None:
            history = self._history(target, PACKAGE)
            promotion = history[-1] if history else None
        pages = dict.fromkeys([f"{self.server}/{target}/+simple/", self.channel_url(channel)])
        for page in pages:
            if promotion is None:
                served = sorted({f.version for f in self._files_on(f"{page}{PACKAGE}/")})
                if served:
                    raise PackageIndexError(
                        f"channel {channel} ({page}) serves {PACKAGE} {', '.join(served)} without a promotion record "
                        f"(make promote writes one): nobody promoted these bytes through make promote; promote a "
                        f"version (make promote VERSION=... CHANNEL={channel}) before anyone follows it")
                continue
            for name, pinned in sorted(promotion.files.items()):
                served = {f.filename: f.sha256 or "" for f in self._files_on(f"{page}{name}/")}
                if served != pinned:
                    raise PackageIndexError(f"channel {channel} ({page}) {_difference(served, pinned)}, not what "
                                            f"promotion {promotion.number} ({name} {promotion.version}) pinned: nobody "
                                            "promoted these bytes; check the channel index, then promote a version "
                                            f"again (make promote VERSION=... CHANNEL={channel})")

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
        """Write the history into the channel index's record of ``version`` and of ``HISTORY_VERSION``."""
        description = HISTORY_HEADING + "\n" + "".join(p.line() for p in history)
        self._register(index, {"name": project, "version": HISTORY_VERSION}, description, auth)
        self._describe(index, project, version, description, auth)

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

    def _wait_for_channel(self, channel: str, promotion: Promotion) -> None:
        """Until the channel's readers (the replica with INDEX_READ_URL) serve exactly the files ``promotion``
        pinned, of every project it pinned (the -onnx twin's deletion replicates apart from the package's)."""
        if not self.settings.read_url:
            return
        url = self.channel_url(channel)
        for project, pinned in sorted(promotion.files.items(), key=lambda item: item[0] != PACKAGE):
            page = f"{url}{project}/"
            self._wait_until(lambda page=page, pinned=pinned: {f.filename: f.sha256 or "" for f in self._files_on(page)}
                             == pinned, page, f"{project} {promotion.version} alone")
        print(f"read back {promotion.version} from {url}: the only version the channel serves", flush=True)

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
            if name == release_index or name.endswith(STAGING_SUFFIX) or name + STAGING_SUFFIX in indexes:
                continue  # a release index (it has a staging index) or a staging index: no channel
            served = sorted({f.version for f in self._files_on(f"{self.server}/{user}/{name}/+simple/{PACKAGE}/")})
            if served:
                histories[name] = self._history(f"{user}/{name}", PACKAGE) or [
                    Promotion(0, version, "-", "-", "-") for version in served]
        return histories


def _release_files(data: dict) -> dict[str, str]:
    """File name -> sha256 of the release files in devpi's record of a version."""
    return {urllib.parse.unquote(str(link.get("href", "")).rsplit("/", 1)[-1]):
            str((link.get("hashes") or {}).get("sha256") or str(link.get("hash_spec", "")).removeprefix("sha256="))
            for link in data.get("+links", []) if isinstance(link, dict) and link.get("rel") == "releasefile"}


def _logged(link: dict) -> datetime:
    """When devpi stored a file (the newest ``when`` of its log: UTC year, month, day, hour, minute, second)."""
    moments = []
    for entry in link.get("log", []) if isinstance(link.get("log"), list) else []:
        try:
            moments.append(datetime(*entry["when"][:6], tzinfo=timezone.utc))
        except (TypeError, KeyError, ValueError):
            continue
    return max(moments, default=datetime.now(timezone.utc))


def _difference(served: dict[str, str], pinned: dict[str, str]) -> str:
    """The first way a channel's files (name -> sha256) differ from the pinned ones, as a clause.

    >>> _difference({"a.whl": "1" * 64}, {"a.whl": "2" * 64})
    'serves a.whl with sha256 1111111111111111..., promoted 2222222222222222...'
    >>> _difference({}, {"a.whl": "2" * 64}), _difference({"a.whl": "2" * 64, "b.whl": "3"}, {"a.whl": "2" * 64})
    ('no longer serves a.whl', 'serves b.whl')
    """
    for name in sorted(pinned):
        if name not in served:
            return f"no longer serves {name}"
        if served[name] != pinned[name]:
            return f"serves {name} with sha256 {served[name][:16]}..., promoted {pinned[name][:16]}..."
    return f"serves {', '.join(sorted(set(served) - set(pinned)))}"
