"""One file to the index with twine, telling a file we stored from one the index already held."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import progress
from pipeline.errors import PackageIndexError
from pipeline.indexes.base import IndexClient

if TYPE_CHECKING:
    from twine.settings import Settings


def upload_settings(client: IndexClient, url: str | None = None) -> Settings:
    """twine's settings for uploading to ``client``'s index (or to ``url``) with its credentials."""
    from twine.settings import Settings

    if not (client.username and client.password):
        raise PackageIndexError(f"no upload credentials for {client.url}: start the index with make index "
                                "(it creates them) or set INDEX_USERNAME and INDEX_PASSWORD")
    return Settings(repository_url=url or client.url, username=client.username, password=client.password,
                    non_interactive=True, disable_progress_bar=True)


def send(client: IndexClient, settings: Settings, path: Path) -> bool:
    """Upload one file with twine; False when the index answered that it already held these very
    bytes (devpi, to a byte-identical re-upload): then somebody else uploaded them, not us.

    Raises requests.HTTPError for an error answer, as ``twine upload`` does."""
    from twine.exceptions import RedirectDetected
    from twine.package import PackageFile
    from twine.utils import check_status_code, sanitize_url

    # twine's own Repository, not ``twine upload``: its answer's reason and body say who stored the file.
    repository = settings.create_repository()
    repository.disable_progress_bar = not progress.shown(path.stat().st_size)  # twine's bar, for a large file
    try:
        response = repository.upload(PackageFile.from_filename(str(path), None))
    finally:
        repository.close()
    if response.is_redirect:  # as ``twine upload`` does: a redirected POST stored nothing
        raise RedirectDetected.from_args(sanitize_url(client.url), sanitize_url(response.headers["location"]))
    check_status_code(response, verbose=False)
    return not client.held_already(f"{response.reason}\n{response.text}")
