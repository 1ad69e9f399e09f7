"""The documentation site: the strict build (make docs), the generated reference against the code it is
written from (the Makefile, dataset.toml's keys, the package's command line, make consumer), and the
pages' images."""

from __future__ import annotations

import os
import re


from index import devpi
from index.settings import CHANNEL_TIMEOUT, INDEX_DIR, INDEX_PORT, INDEX_READ_TIMEOUT, REPO
from pipeline import dataset_keys
from pipeline.views import reference
from tests.docs_text import DOCS, page
from tests.helpers import copy_repo, make, run

MAKEFILE = (REPO / "Makefile").read_text()


def test_the_generated_files_are_what_the_code_gives():
    """A change to the Makefile, dataset.toml's keys, the command line or a recipe needs make docs (which
    writes docs/generated/) before it is committed."""
    wanted = reference.generated()
    committed = {p.relative_to(DOCS).as_posix() for p in (DOCS / reference.GENERATED).rglob("*") if p.is_file()}
    assert committed == set(wanted), "run make docs: docs/generated/ holds other files than the code generates"
    for name, text in wanted.items():
        assert (DOCS / name).read_text() == text, f"docs/{name} is stale: run make docs and commit it"


def test_make_docs_builds_the_whole_site_strictly_and_rewrites_a_stale_generated_file(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    stale = repo / "docs" / reference.GENERATED / "make.md"
    stale.write_text("| stale |\n")
    built = make(repo, "docs", dict(os.environ), timeout=300)
    output = built.stdout + built.stderr
    assert not re.search(r"^(WARNING|ERROR)\b", output, re.MULTILINE) and "Documentation built" in output, output
    assert stale.read_text() == reference.generated()[f"{reference.GENERATED}/make.md"]
    site = repo / "site"
    consume = (site / "consume" / "index.html").read_text()
    assert "mymodel==2.0.0+titanic.v2" in consume and "poetry source add" in consume
    assert "make docs-serve" in (site / "reference" / "make" / "index.html").read_text()
    api = (site / "reference" / "python-api" / "index.html").read_text()
    assert all(name in api for name in ("list_models", "metadata", "load", "predict", "check_environment"))
    assert "Benchmark results" in (site / "benchmarks" / "index.html").read_text()
    assert (site / "search" / "search_index.json").is_file()
    assert "fonts.googleapis.com" not in (site / "index.html").read_text()  # nothing from the network


def test_a_broken_link_fails_the_strict_build(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    (repo / "docs" / "yanking.md").write_text("# Yanking\n\n[gone](no-such-page.md)\n")
    broken = make(repo, "docs", dict(os.environ), check=False, timeout=300)
    assert broken.returncode != 0 and "no-such-page.md" in broken.stdout + broken.stderr


def test_make_help_lists_every_variable_the_makefile_declares():
    listed = run(["make", "--no-print-directory", "-C", REPO, "help"]).stdout
    variables = reference.make_variables(MAKEFILE)
    assert len(variables) > 30
    for variable in variables:
        assert re.search(rf"^  {variable.name}={re.escape(variable.default)} +\S", listed, re.MULTILINE), variable
    exported = " ".join(re.findall(r"^export (.*)$", MAKEFILE, re.MULTILINE)).split()
    declared = {variable.name for variable in variables}
    assert set(exported) <= declared, f"exported but not declared: {set(exported) - declared}"


def test_the_makefiles_stated_defaults_are_the_codes():
    """What make help and the reference say a variable defaults to is what the code uses."""
    stated = {variable.name: variable.default for variable in reference.make_variables(MAKEFILE)}
    assert stated["INDEX_PORT"] == str(INDEX_PORT)
    assert stated["INDEX_DIR"] == INDEX_DIR.relative_to(REPO).as_posix()
    assert stated["INDEX_READ_TIMEOUT"] == f"{INDEX_READ_TIMEOUT:g}"
    assert stated["INDEX_CHANNEL_TIMEOUT"] == str(CHANNEL_TIMEOUT)
    assert (stated["DEVPI_PORT"], stated["DEVPI_REPLICA_PORT"]) == (str(devpi.DEVPI_PORT), str(devpi.DEVPI_REPLICA_PORT))
    for name in ("VENV", "PYTHON", "DOCS_PORT"):
        assert re.search(rf"^{name} \?= {re.escape(stated[name])}$", MAKEFILE, re.MULTILINE), name
    assert re.search(r'env\("RELEASE_LOCK_TIMEOUT", "' + stated["RELEASE_LOCK_TIMEOUT"] + '"\\)',
                     (REPO / "pipeline/steps/release.py").read_text())


def test_every_target_is_in_the_make_reference():
    text = page("reference/make.md")
    for target, _ in reference.make_targets(MAKEFILE):
        assert f"| `make {target}` |" in text, target


def test_the_dataset_reference_names_every_key_with_its_type_and_default():
    text = page("reference/dataset-toml.md")
    for key in dataset_keys.KEYS:
        heading = text.index(f"## `[{key.table}]`")
        entry = text.index(f"### `{key.name}`", heading)
        assert f"- type: {key.type}" in text[entry:] and key.example in text[entry:], key
    assert "LogisticRegression" in text and "HistGradientBoostingRegressor" in text  # the default models


def test_the_registry_page_doc_shows_images_that_exist():
    text = (DOCS / "registry-page.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) >= 2
    for image in images:
        assert (DOCS / image).is_file() and (DOCS / image).stat().st_size > 10_000, image
