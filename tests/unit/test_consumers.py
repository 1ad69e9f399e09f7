"""make consumer: each client's recipe as printed, the documentation's copy of it (the Consume page), and the errors."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest

from pipeline.views import consumers, pins, reference
from tests.docs_text import DOCS, page
from tests.helpers import REPO, assert_clean_error, index_env, make

DEFAULT_URL = "http://127.0.0.1:8080/simple/"
VERSION, ROLLBACK = "2.0.0+titanic.v2", "1.1.1+titanic"


def page_blocks(form: str = "VERSION=") -> dict[str, tuple[str, str]]:
    """Each ``make consumer CLIENT=... <form>...`` line of the Consume page -> (its variables, the block below
    it, with the generated file it includes in place)."""
    found = re.findall(r"^`make consumer CLIENT=(\S+) ([^`]*)`:\n\n```\n(.*?)```\n", page("consume.md"), re.M | re.S)
    return {client: (variables, block) for client, variables, block in found if variables.startswith(form)}


def printed(tmp_path, *variables: str) -> str:
    """make consumer in this clone, against the default index's URL (port 8080), nothing started."""
    env = index_env(tmp_path, INDEX_PORT="8080")
    return make(REPO, "consumer", env, *variables).stdout


@pytest.mark.parametrize("client", consumers.CLIENTS)
def test_make_consumer_prints_the_recipe_the_docs_show(client, tmp_path):
    variables, block = page_blocks()[client]
    assert variables == f"VERSION={VERSION} ROLLBACK={ROLLBACK}"
    output = printed(tmp_path, f"CLIENT={client}", *variables.split())
    assert output == block
    assert output == consumers.recipe(client, consumers.target("mymodel", DEFAULT_URL, VERSION, ROLLBACK)).render()
    assert f"=={VERSION}" in output and f"=={ROLLBACK}" in output
    commands = [line for line in output.splitlines() if not line.startswith("#")]
    assert not any("--extra-index-url" in line for line in commands)


@pytest.mark.parametrize("client", consumers.CLIENTS)
def test_make_consumer_prints_the_channel_recipe_the_docs_show(client, tmp_path):
    """The channel form, which tests/integration/test_consumers.py follows through a promotion and a rollback."""
    variables, block = page_blocks("CHANNEL=")[client]
    assert variables == "CHANNEL=prod"
    output = printed(tmp_path, f"CLIENT={client}", variables)
    assert output == block == recipe(client, channel="prod")


def test_the_docs_show_every_client_from_the_generated_files():
    assert sorted(page_blocks()) == sorted(page_blocks("CHANNEL=")) == sorted(consumers.CLIENTS)
    for client in consumers.CLIENTS:
        for channel in (False, True):
            name = reference.consumer_file(client, channel)
            assert f'```\n--8<-- "{name}"\n```' in (DOCS / "consume.md").read_text(), name
            assert (DOCS / name).read_text() == reference.consumer_recipe(client, channel)


def recipe(client: str, **options) -> str:
    return consumers.recipe(client, consumers.target("mymodel", DEFAULT_URL, VERSION, ROLLBACK, **options)).render()


def test_explicit_index_settings_keep_the_package_off_other_indexes():
    uv_project = recipe("uv-project")
    assert 'explicit = true' in uv_project and 'mymodel = { index = "models" }' in uv_project
    assert "uv add --raw mymodel==" in uv_project
    poetry = recipe("poetry")
    assert f"poetry source add --priority=explicit models {DEFAULT_URL}" in poetry
    assert f"poetry add mymodel@=={VERSION} --source models" in poetry
    assert 'include_packages = ["mymodel", "mymodel-*"]' in recipe("pdm")
    assert "--emit-index-url" in recipe("uv")


def test_a_channel_points_at_its_view_and_follows_it(tmp_path):
    assert printed(tmp_path, "CLIENT=pip", "CHANNEL=prod", f"VERSION={VERSION}") == recipe("pip", channel="prod")
    for client in consumers.CLIENTS:
        output = recipe(client, channel="prod")
        assert "http://127.0.0.1:8080/channels/prod/simple/" in output, client
        assert "127.0.0.1:8080/simple/" not in output, client
        assert "mymodel==" not in output and "follow the channel" in output, client
    assert "poetry add 'mymodel>=0' --source models" in recipe("poetry", channel="prod")
    assert "uv add --raw mymodel\n" in recipe("uv-project", channel="prod")


def test_private_reads_carry_the_read_only_credential_never_its_password(tmp_path):
    pip = printed(tmp_path, "CLIENT=pip", "INDEX_AUTH=read", f"VERSION={VERSION}")
    assert f"machine 127.0.0.1 login mymodel-reader password PASSWORD\n" in pip
    assert f"PASSWORD from {tmp_path / 'state' / 'reader.json'}" in pip
    assert f"--index-url {DEFAULT_URL} mymodel=={VERSION}" in pip  # no credential on a command line
    for client in consumers.CLIENTS:
        output = recipe(client, private=True, reader="mymodel-reader", reader_file="index/.state/port-8080/reader.json")
        assert "mymodel-reader" in output and "PASSWORD" in output, client
        assert "reader.json" in output, client
    assert "export POETRY_HTTP_BASIC_MODELS_USERNAME=mymodel-reader POETRY_HTTP_BASIC_MODELS_PASSWORD=PASSWORD" in \
        recipe("poetry", private=True, reader="mymodel-reader", reader_file="reader.json")


HOSTILE_URL = "http://127.0.0.1:8080/simple/?a=1&b='x\"y' $(id) z\\/"


@pytest.mark.parametrize("channel", [None, "prod"])
@pytest.mark.parametrize("client", consumers.CLIENTS)
def test_an_index_url_with_shell_and_toml_characters_pastes_as_itself(client, channel):
    """Each shell line gives the URL as one word, each TOML paste reads it back (before: unquoted and
    unescaped, an & ended the command and a " the TOML string)."""
    url = HOSTILE_URL.replace("/simple/", "/channels/prod/simple/") if channel else HOSTILE_URL
    where = consumers.target("mymodel", HOSTILE_URL, VERSION, ROLLBACK, channel, channel_url=url if channel else None)
    printed_recipe = consumers.recipe(client, where)
    commands = [command for step in (*printed_recipe.first, *printed_recipe.steps) for command in step.commands]
    with_url = [shlex.split(command) for command in commands if "127.0.0.1" in command]
    assert with_url or client in ("uv-project", "pdm"), client
    assert all(url in words for words in with_url), with_url
    for name, text in printed_recipe.paste:
        if name == "pyproject.toml":
            parsed = tomllib.loads(text)
            sources = parsed["tool"]["uv"]["index"] if client == "uv-project" else parsed["tool"]["pdm"]["source"]
            assert sources[0]["url"] == url


def test_a_uv_project_recipe_starts_the_project_when_there_is_none():
    printed_recipe = consumers.recipe("uv-project", consumers.target("mymodel", DEFAULT_URL, VERSION, ROLLBACK))
    assert printed_recipe.step("init").commands == ("uv init --bare",)
    text = printed_recipe.render()
    assert text.index("uv init --bare") < text.index("# pyproject.toml:")
    assert "python -m pip install uv" in text


def test_the_rollback_defaults_to_the_release_before_that_is_not_yanked(tmp_path):
    releases = tmp_path / "releases"
    releases.mkdir()
    for version in ("1.1.1+titanic", "1.1.2+titanic", "1.2.0+titanic", "not-a-version"):
        (releases / f"mymodel-{version}.txt").write_text("")
    released = pins.releases(releases, "mymodel")
    assert released == ["1.2.0+titanic", "1.1.2+titanic", "1.1.1+titanic"]
    assert pins.rollback("1.2.0+titanic", pins.Yanks({}), released) == ("1.1.2+titanic", [])
    assert pins.rollback("1.1.1+titanic", pins.Yanks({}), released) == (None, [])
    assert pins.rollback("1.2.0+titanic", pins.Yanks({"1.1.2+titanic": "bad split"}), released) == (
        "1.1.1+titanic", ["the rollback passes over mymodel 1.1.2+titanic: yanked (bad split)"])
    assert "'mymodel==<earlier X.Y.Z+tag>'" in consumers.recipe(
        "pip", consumers.target("mymodel", DEFAULT_URL, VERSION, None)).render()


@pytest.mark.parametrize("variables, fragments", [
    ((), ("make consumer needs CLIENT=", "pip, uv, uv-project, poetry, pdm, pip-tools, pipx")),
    (("CLIENT=conda",), ("not 'conda'", "make consumer CLIENT=uv")),
    (("CLIENT=pip", "VERSION=1.1.1-titanic"), ("1.1.1-titanic",)),
    (("CLIENT=pip", f"VERSION={VERSION}", "CHANNEL=Prod_EU"), ("use CHANNEL=prod-eu",)),
])
def test_bad_input_is_one_clear_error(variables, fragments, tmp_path):
    assert_clean_error(make(REPO, "consumer", index_env(tmp_path), *variables, check=False), *fragments)
