# make help lists every target and variable; the documentation's Make reference (docs/reference/make.md) is
# written from the same lines: a target's "## " comment, and each variable's "#= NAME=<default>  what it does".
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready
REQUIREMENTS ?= requirements.lock
BENCH_ARGS ?=
DOCS_PORT ?= 8000

# The variables a target reads (command line or environment; empty means unset).
#= BUMP=                  major, minor or patch (or release, interface, logic): a higher bump than the change requires
#= DATA=                  the data tag of the run (default: [dataset] tag); for train also <package>-data==X.Y.Z+tag
#= DATA_FILE=             a CSV to train on for this run (default: [dataset] source)
#= FORCE=0                1: release although the gate fails or BUMP is below what the change requires (recorded)
#= VERSION=               X.Y.Z+tag: the version to build, upload, verify, lock, yank, unyank, promote or print for
#= REASON=                why a version is yanked (shown by pip and uv on an exact pin)
#= CHANNEL=               a channel name (lowercase letters, digits, hyphens), e.g. prod
#= NOTE=                  the promoter's own words, recorded beside a promotion (make promote)
#= PAGE=1                 which page of each channel's promotions make channels shows, newest first (20 a page)
#= ALL=0                  1: make channels shows every promotion
#= CLIENT=                pip, uv, uv-project, poetry, pdm, pip-tools or pipx
#= ROLLBACK=              the earlier version a recipe rolls back to (default: the one released before VERSION)
#= A=                     the older published version make diff compares
#= B=                     the newer one (default: this clone's make train output)
#= FORMAT=text            json: machine-readable output
#= ONNX=0                 1: the <package>-onnx wheel's hash-locked requirement
#= NAME=                  the package's new name, e.g. titanic-survival (make rename); a credential's (make credential)
#= PACKAGES=              the packages a credential may act on, comma-separated (each with its -onnx, -data twins), or '*'
#= ROLE=                  a credential's role: read, upload (publish) or maintain (also yank, unyank, promote, take back)
#= REVOKE=                the credential make credential revokes
#= ASSIGN=                a package make credential gives to the scope of credential NAME=
#= LIST=0                 1: make credential lists the credentials
#= PACKAGE=               make audit: only this package's entries (its -onnx and -data twins included)
#= INDEX_PORT=8080        the local index's port, for every target that uses the index
#= INDEX_DIR=index/packages   the folder of package files the local index serves
#= INDEX_AUTH=            update (credentials to upload) or read (to read too); default: as the index runs, update to start one
#= INDEX_STATE=           the index's state folder: credentials, digests, yanks, channels (default: index/.state/port-<port>)
#= INDEX_FALLBACK=on      off: the local index answers 404 for projects it does not hold instead of redirecting
#= INDEX_CHANNEL_TIMEOUT=30   seconds after which the local index closes an idle connection
#= INDEX_ABANDONED_AFTER=600  seconds after its last upload that a version no release sealed is abandoned (taken back by the next make release)
#= INDEX_URL=             an index this project does not run (http://host:port/, devpi: http://host:port/<user>/<index>/)
#= INDEX_KIND=            pypiserver or devpi (default: detected from INDEX_URL)
#= INDEX_READ_URL=        a replica's simple URL, for read-back and consumers' install lines
#= INDEX_READ_TIMEOUT=30  seconds a release waits for INDEX_READ_URL to serve the new version
#= INDEX_USERNAME=        the upload user of INDEX_URL (TWINE_USERNAME works too)
#= INDEX_PASSWORD=        its password (TWINE_PASSWORD works too)
#= INDEX_CREDENTIALS=     a credentials.json with the upload user and password (INDEX=devpi: make devpi's)
#= INDEX_REQUEST_LOG=     a file where the local index logs each request and the bytes sent
#= RELEASE_LOCK_TIMEOUT=900   seconds a release waits for another release of this clone to finish
#= INDEX=                 devpi: use the primary and replica of make devpi, with the credentials it generated
#= DEVPI_PORT=3141        make devpi's primary port
#= DEVPI_REPLICA_PORT=3142    make devpi's replica port
#= DEVPI_TEAMS=            make devpi: teams (comma-separated), each with its index <team>/dev and users <team> and <team>-ci
#= DEVPI_STATE=           make devpi's state folder (default: index/.state/devpi)
#= DOCS_PORT=8000         the port of make docs-serve (on 127.0.0.1)
#= BENCH_ARGS=            arguments of python -m benchmarks.run, e.g. --only fleet (one section), --versions 20 --size-mb 1
#= RELEASE_CACHE=         the folder of the work a release keeps by its inputs' sha256 (default: .cache/release); off: none
#= TEST_JOBS=4            how many groups of tests make test and make integration run side by side
#= VENV=.venv             the virtual environment every target creates and uses
#= PYTHON=python3         the Python that creates VENV

# Make variables reach the pipeline as environment variables (empty = unset).
export BUMP DATA DATA_FILE FORCE VERSION REASON CHANNEL NOTE PAGE ALL CLIENT ROLLBACK A B FORMAT ONNX INDEX_PORT INDEX_DIR INDEX_AUTH INDEX_URL INDEX_STATE INDEX_FALLBACK
export RELEASE_CACHE
export INDEX_KIND INDEX_READ_URL INDEX_READ_TIMEOUT INDEX_CHANNEL_TIMEOUT INDEX_ABANDONED_AFTER INDEX_CREDENTIALS DEVPI_PORT DEVPI_REPLICA_PORT DEVPI_STATE

# INDEX=devpi: the primary and replica of make devpi, with the credentials it generated.
ifeq ($(INDEX),devpi)
INDEX_URL := $(or $(INDEX_URL),http://127.0.0.1:$(or $(DEVPI_PORT),3141)/mymodel/dev/)
INDEX_READ_URL := $(or $(INDEX_READ_URL),http://127.0.0.1:$(or $(DEVPI_REPLICA_PORT),3142)/mymodel/dev/+simple/)
INDEX_CREDENTIALS := $(or $(INDEX_CREDENTIALS),$(or $(DEVPI_STATE),$(CURDIR)/index/.state/devpi)/credentials.json)
endif

.PHONY: help venv requirements train version released build index index-stop index-status upload release verify lock versions diff yank unyank promote channels consumer credential audit rename devpi devpi-stop devpi-channel docs docs-serve test unit integration bench clean

help: ## list the targets and the variables they read
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables (make <target> NAME=value, or the environment):"
	@awk '/^#= / {name = $$2; sub(/^#= +[^ ]+ +/, ""); printf "  %-24s %s\n", name, $$0}' $(MAKEFILE_LIST)

# On stderr, so that `make version` or `make lock > file` print only their answer on a first run;
# pip's progress on a terminal, quiet otherwise (CI logs).
$(READY): $(REQUIREMENTS)
	@if test -x $(PY); then echo "updating $(VENV): installing the pinned dependencies of $(REQUIREMENTS)" >&2; \
	else echo "creating $(VENV) and installing the pinned dependencies (first run only, about 2 minutes)" >&2; \
	     $(PYTHON) -m venv $(VENV); fi
	@quiet=$$(test -t 2 || echo --quiet); \
	$(PY) -m pip install $$quiet --disable-pip-version-check --upgrade pip >&2 && \
	$(PY) -m pip install $$quiet --disable-pip-version-check -r $(REQUIREMENTS) >&2
	@touch $@

venv: $(READY) ## create .venv with the pinned dependencies (every target does it first)

# Every [dependency-groups] group of pyproject.toml goes into the one lock make venv installs.
DEPENDENCY_GROUPS = $(shell $(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"])')

# The lock names packages of the default index only: this machine's pip and uv configuration is ignored.
requirements: $(READY) ## regenerate requirements.lock, hashes included, from pyproject.toml's [dependency-groups] (uv pip compile)
	PIP_CONFIG_FILE=/dev/null UV_NO_CONFIG=1 $(VENV)/bin/uv pip compile --quiet --python $(PY) --generate-hashes \
		--custom-compile-command "make requirements" $(addprefix --group ,$(DEPENDENCY_GROUPS)) -o requirements.lock

train: $(READY) ## train and evaluate the models into src/<package>/models (DATA_FILE= DATA=tag, or DATA=<package>-data==X)
	$(PY) -m pipeline train

version: $(READY) ## print the next version: what the trained models require, or BUMP=patch|minor|major (DATA=tag)
	@$(PY) -m pipeline version

released: $(READY) ## print the version this clone released last (src/<package>/version.py), the newest not yanked, for scripts and pip install lines
	@$(PY) -m pipeline released

build: $(READY) ## build the next version's sdist and wheel into dist/ (VERSION= to choose)
	$(PY) -m pipeline build

index: $(READY) ## start the local pypiserver on 127.0.0.1:8080 (INDEX_PORT=, then kept for this clone's targets; INDEX_DIR=, INDEX_AUTH=read)
	@$(PY) -m pipeline index

index-stop: $(READY) ## stop the local pypiserver
	@$(PY) -m pipeline index-stop

index-status: $(READY) ## is the local pypiserver running, and where; and every other index this clone runs
	@$(PY) -m pipeline index-status

upload: $(READY) ## upload the newest build in dist/ (or VERSION=) with twine and verify it
	$(PY) -m pipeline upload

release: $(READY) ## train, version (from what changed), gate, build, upload, verify; nothing if unchanged (BUMP= DATA= DATA_FILE= FORCE=1)
	@$(PY) -m pipeline release

verify: $(READY) ## rebuild VERSION= from this checkout and compare its wheel with the index's
	@$(PY) -m pipeline verify

lock: $(READY) ## print the hash-locked requirement of VERSION= for pip/uv --require-hashes (ONNX=1: of <package>-onnx)
	@$(PY) -m pipeline lock

versions: $(READY) ## list the published versions, newest first: data, date, size, accuracy, bump and why (FORMAT=json)
	@$(PY) -m pipeline versions

diff: $(READY) ## what changed from A= to B= and the bump it requires (B omitted: this clone's make train output; FORMAT=json)
	@$(PY) -m pipeline diff

yank: $(READY) ## yank VERSION= with REASON="...": pip/uv ranges skip it, an exact pin still installs it (PEP 592)
	@$(PY) -m pipeline yank

unyank: $(READY) ## undo make yank VERSION=: the version is installable by ranges again
	@$(PY) -m pipeline unyank

promote: $(READY) ## make VERSION= the one version the CHANNEL= view <index>/channels/<CHANNEL>/simple/ serves, its files pinned by sha256 (a rollback: promote an older one; NOTE= recorded beside it)
	@$(PY) -m pipeline promote

channels: $(READY) ## each channel's newest promotions: number, version, when, who, commit, note (PAGE=2 older, ALL=1 every one, CHANNEL=)
	@$(PY) -m pipeline channels

consumer: $(READY) ## print what a consumer pastes for CLIENT=pip|uv|uv-project|poetry|pdm|pip-tools|pipx: index settings, pin, install, lock, rollback (VERSION= ROLLBACK= CHANNEL=)
	@$(PY) -m pipeline consumer

credential: $(READY) ## (the admin) create a credential: NAME= PACKAGES= ROLE=read|upload|maintain, its secret on the last line; REVOKE=NAME; ASSIGN=PACKAGE NAME=; LIST=1
	@$(PY) -m pipeline credential

audit: $(READY) ## print the index's audit log (PACKAGE= one package's) and whether its hash chain is intact
	@$(PY) -m pipeline audit

rename: $(READY) ## give the package another name (NAME=titanic-survival DESCRIPTION="..."): dataset.toml, src/<import name>/, pyproject.toml
	@$(PY) -m pipeline rename

# The package's name ([package] name in dataset.toml), read only by the recipes that use it.
PACKAGE_NAME = $(shell $(PY) -c 'from pipeline.package.package_name import PACKAGE; print(PACKAGE)')

devpi: $(READY) ## start a devpi-server primary and replica on 127.0.0.1:3141/3142 (DEVPI_PORT= DEVPI_REPLICA_PORT=; DEVPI_TEAMS= a user pair and index per team)
	@$(PY) -m index.devpi start --package $(PACKAGE_NAME)

devpi-stop: $(READY) ## stop the devpi primary and replica of make devpi
	@$(PY) -m index.devpi stop

devpi-channel: $(READY) ## create the devpi channel index mymodel/<CHANNEL=> that make promote INDEX=devpi pushes to (make devpi makes prod)
	@$(PY) -m index.devpi channel

# The site: MkDocs with the Material theme (mkdocs.yml); docs/hooks.py first writes the generated reference
# (docs/generated/) from the code. Material's notice about its successor is no build warning: silenced.
docs: $(READY) ## build the documentation into site/ (strict: a broken link, a missing page or any warning fails it)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: $(READY) ## serve the documentation on 127.0.0.1:8000 (DOCS_PORT=), rebuilt and reloaded on every change
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT) --livereload

UNIT_TESTS ?= pipeline index $(dir $(wildcard src/*/__init__.py)) tests
INTEGRATION_TESTS ?= tests
TEST_JOBS ?= 4

# One pytest process per group (tests/run_groups.py), TEST_JOBS at a time; each group's output is
# printed whole when it ends, then every group's time, the wall and CPU time, and pytest's closing line.
test: $(READY) ## run the unit and integration tests (real pypiserver, twine, pip, uv): timed groups side by side (TEST_JOBS=4)
	$(PY) -m tests.run_groups --jobs $(TEST_JOBS) --unit "$(UNIT_TESTS)" $(INTEGRATION_TESTS)

unit: $(READY) ## run only the fast unit tests and doctests
	$(PY) -m pytest -q -m "not integration" --doctest-modules $(UNIT_TESTS)

integration: $(READY) ## run only the integration tests, in timed groups side by side (TEST_JOBS=4)
	$(PY) -m tests.run_groups --jobs $(TEST_JOBS) $(INTEGRATION_TESTS)

bench: $(READY) ## benchmark the index against stock pypiserver and nginx, and the release; writes benchmarks/RESULTS.md
	$(PY) -m benchmarks.run $(BENCH_ARGS)

clean: ## remove build outputs, trained models and the built documentation (keeps .venv, the index and its packages)
	rm -rf dist build site src/*/models src/*.egg-info .pytest_cache
