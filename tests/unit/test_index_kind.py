"""Which client speaks to INDEX_URL: the embedded index's, or devpi's."""

import pytest

from pipeline.config import index_settings
from pipeline.errors import ConfigError
from pipeline.indexes.connect import index_client
from pipeline.indexes.devpi import DevpiClient
from pipeline.indexes.pypiserver import PypiserverClient


@pytest.mark.parametrize("url, kind, expected, simple", [
    ("http://127.0.0.1:3141/mymodel/dev/", None, DevpiClient, "http://127.0.0.1:3141/mymodel/dev/+simple/"),
    ("http://127.0.0.1:8080/", None, PypiserverClient, "http://127.0.0.1:8080/simple/"),
    ("http://127.0.0.1:9000/repo/", "devpi", DevpiClient, "http://127.0.0.1:9000/repo/+simple/"),
    ("http://127.0.0.1:3141/a/b/", "pypiserver", PypiserverClient, "http://127.0.0.1:3141/a/b/simple/"),
])
def test_index_url_or_index_kind_selects_the_client(monkeypatch, url, kind, expected, simple):
    monkeypatch.setenv("INDEX_URL", url)
    monkeypatch.setenv("INDEX_KIND", kind or "")
    monkeypatch.delenv("INDEX_READ_URL", raising=False)
    client = index_client(index_settings())
    assert type(client) is expected
    assert client.page_url() == simple and client.settings.simple_url == simple


def test_index_read_url_is_what_consumers_are_told(monkeypatch):
    monkeypatch.setenv("INDEX_URL", "http://127.0.0.1:3141/mymodel/dev/")
    monkeypatch.setenv("INDEX_READ_URL", "http://127.0.0.1:3142/mymodel/dev/+simple")
    settings = index_settings()
    assert settings.simple_url == "http://127.0.0.1:3142/mymodel/dev/+simple/"
    assert index_client(settings).page_url("mymodel") == "http://127.0.0.1:3141/mymodel/dev/+simple/mymodel/"


def test_an_unknown_index_kind_is_a_config_error(monkeypatch):
    monkeypatch.setenv("INDEX_KIND", "nexus")
    with pytest.raises(ConfigError, match="INDEX_KIND='nexus' is not one of pypiserver, devpi"):
        index_settings()
