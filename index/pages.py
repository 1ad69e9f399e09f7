"""The simple repository pages as text: HTML (PEP 503 + 592 + 658/714) and JSON (PEP 691).

Pure functions of what a project serves; ``index/simple.py`` gathers that and
picks the form the client's Accept header prefers.
"""

from __future__ import annotations

import html
import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone

from index.metadata import CoreMetadata

API_VERSION = "1.1"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_JSON_TYPES = {JSON_TYPE, "application/vnd.pypi.simple.latest+json"}
_HTML_TYPES = {"application/vnd.pypi.simple.v1+html", "application/vnd.pypi.simple.latest+html", "text/html", "*/*"}


@dataclass(frozen=True)
class File:
    filename: str
    href: str  # relative to the project page, without the fragment
    sha256: str | None
    metadata: CoreMetadata | None
    yanked: str | None  # the reason; None: not yanked
    size: int
    mtime: float


def wants_json(accept: str | None) -> bool:
    """Does the Accept header prefer PEP 691 JSON to HTML? (pip's and uv's header: yes.)

    >>> wants_json("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01")
    True
    >>> wants_json(None), wants_json("*/*"), wants_json("text/html, application/vnd.pypi.simple.v1+json;q=0.5")
    (False, False, False)
    """
    best = {"json": 0.0, "html": 0.0}
    for media_range in (accept or "").split(","):
        kind, *parameters = (part.strip() for part in media_range.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        form = "json" if kind.lower() in _JSON_TYPES else "html" if kind.lower() in _HTML_TYPES else None
        if form:
            best[form] = max(best[form], quality)
    return best["json"] > 0 and best["json"] >= best["html"]


def project_html(project: str, files: list[File]) -> str:
    links = []
    for served in files:
        href = served.href + (f"#sha256={served.sha256}" if served.sha256 else "")
        attributes = f'href="{html.escape(href)}"'
        if served.yanked is not None:
            attributes += f' data-yanked="{html.escape(served.yanked)}"'
        if served.metadata is not None:
            digest = f"sha256={served.metadata.sha256}"
            attributes += f' data-core-metadata="{digest}" data-dist-info-metadata="{digest}"'
            if served.metadata.requires_python:
                attributes += f' data-requires-python="{html.escape(served.metadata.requires_python)}"'
        links.append(f"<a {attributes}>{html.escape(served.filename)}</a><br>")
    title = html.escape(f"Links for {project}")
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="pypi:repository-version" content="{API_VERSION}">\n<title>{title}</title>\n</head>\n'
            f'<body>\n<h1>{title}</h1>\n' + "\n".join(links) + "\n</body>\n</html>\n")


def project_json(project: str, versions: list[str], files: list[File]) -> str:
    entries = []
    for served in files:
        metadata = {"sha256": served.metadata.sha256} if served.metadata else False
        entry = {"filename": served.filename, "url": served.href,
                 "hashes": {"sha256": served.sha256} if served.sha256 else {},
                 "core-metadata": metadata, "dist-info-metadata": metadata,
                 "yanked": (served.yanked or True) if served.yanked is not None else False,
                 "size": served.size, "upload-time": _iso(served.mtime)}
        if served.metadata and served.metadata.requires_python:
            entry["requires-python"] = served.metadata.requires_python
        entries.append(entry)
    return json.dumps({"meta": {"api-version": API_VERSION}, "name": project, "versions": versions, "files": entries})


def legacy_json(project: str, releases: dict[str, list[File]], page_url: str) -> str:
    """``/<project>/json`` as far as pip-tools reads PyPI's JSON API: ``info.version`` the
    newest version not yanked, and in ``releases`` and ``urls`` each file's absolute URL
    (quoted as pip quotes a link, so pip-compile matches it), type and sha256, so
    ``pip-compile --generate-hashes`` need not download a file to hash it.
    ``releases``: version -> its files, oldest version first; ``page_url``: the project's
    simple page, which the files' hrefs are relative to."""
    def entry(served: File) -> dict:
        url = urllib.parse.urlsplit(urllib.parse.urljoin(page_url, served.href))
        return {"filename": served.filename, "url": url._replace(path=urllib.parse.quote(url.path)).geturl(),
                "packagetype": _package_type(served.filename),
                "digests": {"sha256": served.sha256} if served.sha256 else {},
                "requires_python": served.metadata.requires_python if served.metadata else None,
                "size": served.size, "upload_time_iso_8601": _iso(served.mtime),
                "yanked": served.yanked is not None, "yanked_reason": served.yanked or None}

    listed = {version: [entry(served) for served in files] for version, files in releases.items()}
    installable = [version for version, files in releases.items() if any(f.yanked is None for f in files)]
    latest = (installable or list(releases))[-1]
    return json.dumps({"info": {"name": project, "version": latest}, "releases": listed, "urls": listed[latest]})


def _package_type(filename: str) -> str:
    """
    >>> _package_type("a-1-py3-none-any.whl"), _package_type("a-1.tar.gz"), _package_type("a-1-py3.11.egg")
    ('bdist_wheel', 'sdist', 'bdist_egg')
    """
    return "bdist_wheel" if filename.endswith(".whl") else "bdist_egg" if filename.endswith(".egg") else "sdist"


def index_json(projects: list[str]) -> str:
    return json.dumps({"meta": {"api-version": API_VERSION}, "projects": [{"name": name} for name in projects]})


def _iso(timestamp: float) -> str:
    """
    >>> _iso(0)
    '1970-01-01T00:00:00.000000Z'
    """
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
