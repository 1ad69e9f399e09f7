"""Channels: ``make promote VERSION=... CHANNEL=prod`` publishes the next version of
``mymodel-prod`` (1, 2, 3, ...), a package whose only dependency is one exact model
version. A service that depends on ``mymodel-prod`` gets what was promoted last;
``mymodel-prod==1`` reinstalls the first promotion exactly. It is only a package,
so it works on any index the pipeline uploads to.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesParser
from pathlib import Path

from pipeline import registry, uploading
from pipeline.config import PACKAGE, REPO
from pipeline.errors import ConfigError, PackageIndexError, VersionError
from pipeline.index_api import IndexClient
from pipeline.onnx_names import RESERVED_CHANNELS
from pipeline.own_package import store  # not pipeline.build: that imports scikit-learn
from pipeline.versioning import parse

_CHANNEL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def canonical_channel(name: str) -> str:
    """The channel name a messy one stands for.

    >>> canonical_channel("Prod_EU"), canonical_channel(" staging.2 ")
    ('prod-eu', 'staging-2')
    """
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def check_channel(name: str | None) -> str:
    if not name:
        raise ConfigError("make promote needs CHANNEL=<name> (e.g. make promote VERSION=1.1.2+titanic CHANNEL=prod)")
    if not _CHANNEL.fullmatch(name):
        suggestion = canonical_channel(name) or "prod"
        raise ConfigError(f"channel {name!r} is not lowercase letters, digits and hyphens; use CHANNEL={suggestion}")
    if name in RESERVED_CHANNELS:
        raise ConfigError(f"channel {name!r} is reserved: {PACKAGE}-{name} is the release's ONNX distribution; "
                          f"use another name, e.g. CHANNEL={name}-prod")
    return name


def channel_project(channel: str) -> str:
    return f"{PACKAGE}-{channel}"


@dataclass(frozen=True)
class Promotion:
    channel: str
    number: int
    model_version: str
    when: str  # ISO 8601, UTC
    commit: str

    def description(self) -> str:
        return (f"# {channel_project(self.channel)} {self.number}\n\n"
                f"The `{self.channel}` channel of {PACKAGE}: installs exactly the promoted model version.\n\n"
                f"- model: {PACKAGE}=={self.model_version}\n- promoted: {self.when}\n- commit: {self.commit}\n")

    @classmethod
    def from_metadata(cls, channel: str, content: bytes) -> Promotion:
        message = BytesParser().parsebytes(content)
        body = message.get_payload() or ""
        field = dict(re.findall(r"^- (model|promoted|commit): (.*)$", str(body), re.MULTILINE))
        return cls(channel, int(message["Version"]), field.get("model", "?").split("==")[-1],
                   field.get("promoted", "?"), field.get("commit", "?"))


def channel_wheel(promotion: Promotion, directory: Path) -> Path:
    """The channel's wheel: metadata only, requiring ``mymodel==<model version>``."""
    name = channel_project(promotion.channel)
    stem = f"{name.replace('-', '_')}-{promotion.number}"
    metadata = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {promotion.number}\n"
                f"Summary: {PACKAGE}=={promotion.model_version}, promoted to {promotion.channel}\n"
                f"Requires-Dist: {PACKAGE}=={promotion.model_version}\n"
                f"Description-Content-Type: text/markdown\n\n{promotion.description()}").encode()
    wheel_info = b"Wheel-Version: 1.0\nGenerator: mymodel-pipeline\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files = {f"{stem}.dist-info/METADATA": metadata, f"{stem}.dist-info/WHEEL": wheel_info}
    record = "".join(f"{path},sha256={_urlsafe_sha256(data)},{len(data)}\n" for path, data in files.items())
    files[f"{stem}.dist-info/RECORD"] = (record + f"{stem}.dist-info/RECORD,,\n").encode()
    path = directory / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for member, data in files.items():
            wheel.writestr(zipfile.ZipInfo(member, _ZIP_TIME), data)
    return path


def _urlsafe_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def promote(client: IndexClient, version: str | None, channel: str | None) -> Promotion:
    channel = check_channel(channel)
    if not version:
        raise ConfigError("make promote needs VERSION=X.Y.Z+tag (e.g. make promote VERSION=1.1.2+titanic CHANNEL=prod)")
    version = str(parse(version))
    published = registry.complete_versions(client)
    if version not in published:
        raise VersionError(f"{PACKAGE} {version} is not published on {client.url} (published: "
                           f"{', '.join(published) or 'none'}); pass one of those as VERSION=")
    yanked = client.yanked()
    if version in yanked:
        raise VersionError(f"{PACKAGE} {version} is yanked ({yanked[version] or 'no reason given'}); promote "
                           f"another version, or make unyank VERSION={version} first")
    numbers = [int(v) for v in client.versions(channel_project(channel)) if v.isdigit()]
    promotion = Promotion(channel, max(numbers, default=0) + 1, version,
                          datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), _commit())
    with tempfile.TemporaryDirectory() as folder:
        wheel = channel_wheel(promotion, Path(folder))
        _upload(client, wheel)
        # With INDEX_READ_URL (a replica): the install lines printed next work once they are printed.
        client.wait_for_readers(str(promotion.number), {wheel.name: store.sha256_file(wheel)},
                                channel_project(channel))
    return promotion


def _upload(client: IndexClient, wheel: Path) -> None:
    import requests
    from twine.exceptions import TwineException

    taken = "a concurrent promotion took that number; run make promote again"
    try:
        if not uploading.send(client, uploading.upload_settings(client), wheel):
            raise PackageIndexError(f"the index at {client.url} already held {wheel.name} ({taken})")
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else None
        hint = f" ({taken})" if code in (400, 409) else ""
        raise PackageIndexError(f"the index at {client.url} refused {wheel.name} (HTTP {code}){hint}; "
                                "check the index log and retry") from None
    except (requests.ConnectionError, TwineException) as exc:
        raise PackageIndexError(f"uploading {wheel.name} to {client.url} failed ({exc}); "
                                "start the index (make index) and retry") from None


def history(client: IndexClient) -> list[Promotion]:
    """Every promotion of every channel on the index, read from the channel wheels."""
    promotions = []
    for project in client.projects():
        channel = project.removeprefix(f"{PACKAGE}-")
        if channel == project or not _CHANNEL.fullmatch(channel) or channel in RESERVED_CHANNELS:
            continue
        for served in client.files(project):
            if served.filename.endswith(".whl"):
                with zipfile.ZipFile(io.BytesIO(client.download(served))) as wheel:
                    member = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
                    promotions.append(Promotion.from_metadata(channel, wheel.read(member)))
    return sorted(promotions, key=lambda p: (p.channel, p.number))


def history_table(promotions: list[Promotion]) -> str:
    if not promotions:
        return "no channels yet: make promote VERSION=X.Y.Z+tag CHANNEL=prod"
    rows = [("channel", "version", "model", "promoted", "commit")]
    rows += [(channel_project(p.channel), str(p.number), p.model_version, p.when, p.commit) for p in promotions]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
