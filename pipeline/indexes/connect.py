"""The client of the index the settings name: devpi-server's or the embedded index's."""

from __future__ import annotations

from pipeline.config import IndexSettings
from pipeline.indexes.base import IndexClient
from pipeline.indexes.devpi import DevpiClient
from pipeline.indexes.pypiserver import PypiserverClient


def index_client(settings: IndexSettings) -> IndexClient:
    """A ``DevpiClient`` for devpi-server (INDEX_KIND, or detected from INDEX_URL), else a ``PypiserverClient``."""
    return DevpiClient(settings) if settings.backend == "devpi" else PypiserverClient(settings)
