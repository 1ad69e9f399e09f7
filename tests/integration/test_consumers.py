"""Each client's recipe (``make consumer CLIENT=...``, pipeline/views/consumers.py) run as printed,
from a fresh project, against one index with three versions, the newest yanked: the pinned
install, then import and predict; a range that skips the yanked version; an exact pin on the
yanked one; a rollback by pin; a hash-recording lock.

Where only resolution is checked (ranges, the yanked pin) the lock commands run, not an install.
Clients share one HOME (their caches) for the module; every test starts from a fresh project.
The printed commands take the test index's URL and versions; dependencies come from the same
test index (it serves the wheelhouse), given to the clients that would otherwise ask their
default index: ``UV_DEFAULT_INDEX``, ``PDM_PYPI_URL``, and Poetry a primary source.
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from pipeline.views import consumers
from tests.helpers import VENV, consumer_env, fill_index, index_env, index_url, make, pipeline, run
from tests.registry_wheels import renamed_wheel, small_sdist

pytestmark = pytest.mark.integration

OLD, PINNED, YANKED = "1.1.1+titanic", "1.1.2+titanic", "1.1.3+titanic"
RANGE = "mymodel>=1.1,<2"
CONSUMER = Path(__file__).with_name("consumer.py")
ROWS = [{"pclass": 1, "sex": "female", "age": 29, "sibsp": 0, "parch": 0, "fare": 211.3, "embarked": "S"},
        {"pclass": 3, "sex": "male", "age": 40, "sibsp": 0, "parch": 0, "fare": 7.9, "embarked": "S"}]
PROJECT = '[project]\nname = "consumer"\nversion = "0.1.0"\nrequires-python = ">=3.11,<4"\ndependencies = []\n'


class ModelsIndex:
    def __init__(self, env: dict[str, str], home: Path) -> None:
        self.env, self.home = env, home
        self.url = index_url(env) + "simple/"

    def recipe(self, client: str, requirement: str = f"mymodel=={PINNED}") -> consumers.Recipe:
        where = consumers.target("mymodel", self.url, PINNED, OLD)
        return consumers.recipe(client, consumers.Target("mymodel", self.url, requirement, where.rollback))

    def client_env(self, project: Path) -> dict[str, str]:
        path = os.pathsep.join([str(project / ".venv" / "bin"), str(VENV / "bin"), str(self.home / "bin"),
                                os.environ["PATH"]])
        # A project's dependencies: from the test index, the stand-in for uv's and pdm's default index
        # (not for uv pip, whose --index-url it would override).
        stand_in = {"UV_DEFAULT_INDEX": self.url, "PDM_PYPI_URL": self.url} if (project / "pyproject.toml").exists() else {}
        # VIRTUAL_ENV: uv pip and pip act on the project's venv, never on the one running the tests.
        return consumer_env(HOME=str(self.home), PATH=path, VIRTUAL_ENV=str(project / ".venv"), **stand_in,
                            UV_PYTHON_DOWNLOADS="never", PDM_CHECK_UPDATE="false",
                            # Installs link from the module's own caches (no test here edits an installed file).
                            UV_LINK_MODE="hardlink", PDM_INSTALL_CACHE="true",
                            # No .pyc for the installed libraries: "0" (pip reads a --no-* variable inverted:
                            # PIP_NO_COMPILE=1 compiles).
                            PIP_NO_COMPILE="0",
                            PDM_NON_INTERACTIVE="1", POETRY_VIRTUALENVS_IN_PROJECT="true",
                            POETRY_NO_INTERACTION="1", PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
                            PIPX_HOME=str(self.home / "pipx"), PIPX_BIN_DIR=str(self.home / "bin"),
                            PIPX_MAN_DIR=str(self.home / "man"), XDG_CONFIG_HOME=str(self.home / ".config"))

    def run(self, project: Path, step: consumers.Step, exports: str = "") -> str:
        """Every command of ``step``, as printed, in ``project`` (after ``exports``, the recipe's
        environment lines)."""
        output = []
        for command in step.commands:
            output.append(run(["bash", "-c", exports + command], cwd=project, env=self.client_env(project),
                              timeout=900).stdout)
        return "\n".join(output)

    def paste(self, project: Path, recipe: consumers.Recipe) -> None:
        """The recipe's pasted files: appended to pyproject.toml; requirements.in and ~/.netrc written."""
        for name, text in recipe.paste:
            if name.startswith("~/.netrc"):
                (self.home / ".netrc").write_text(text + "\n")
                (self.home / ".netrc").chmod(0o600)
                continue
            if name.startswith("your environment"):
                continue  # exports: see exports()
            assert name in ("pyproject.toml", "requirements.in"), name
            with open(project / name, "a" if name == "pyproject.toml" else "w", encoding="utf-8") as file:
                file.write(("\n" if name == "pyproject.toml" else "") + text)


@pytest.fixture(scope="module")
def models_index(released, tmp_path_factory) -> ModelsIndex:
    """The two released wheels, a third version (the second's models, renamed) yanked, and the
    wheelhouse, on one fresh index."""
    tmp = tmp_path_factory.mktemp("consumers")
    env = index_env(tmp)
    packages = Path(env["INDEX_DIR"])
    fill_index(packages)
    served = Path(released.env["INDEX_DIR"])
    for version in (OLD, PINNED):
        wheel = served / f"mymodel-{version}-py3-none-any.whl"
        os.link(wheel, packages / wheel.name)
    renamed_wheel(served / f"mymodel-{PINNED}-py3-none-any.whl", packages, "mymodel", YANKED)
    pipeline(released.repo, env, "index")
    make(released.repo, "yank", env, f"VERSION={YANKED}", "REASON=bad split")
    home = tmp / "home"
    home.mkdir()
    yield ModelsIndex(env, home)
    pipeline(released.repo, env, "index-stop", check=False)
    site_packages = Path(sysconfig.get_paths()["purelib"])
    assert not list(site_packages.glob("mymodel*")), "a client installed into the venv running the tests"


def fresh_project(tmp_path: Path, index: ModelsIndex, seed_pip: bool = False, project_file: bool = False) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    if project_file:
        (project / "pyproject.toml").write_text(PROJECT)
    uv, env = VENV / "bin" / "uv", index.client_env(project)
    run([uv, "venv", "--quiet", "--python", sys.executable, project / ".venv"], env=env)
    if seed_pip:  # a pip with pip lock (a fresh venv's own pip is older)
        run([uv, "pip", "install", "--quiet", "--python", project / ".venv", "--index-url", index.url, "pip"], env=env)
    return project


def predicts(project: Path, index: ModelsIndex, version: str, python: Path | None = None) -> None:
    """import mymodel; predict, in the project's venv: the version and a label per row for every model."""
    rows = project / "rows.json"
    rows.write_text(json.dumps(ROWS))
    python = python or project / ".venv" / "bin" / "python"
    report = json.loads(run([python, CONSUMER, rows], env=index.client_env(project)).stdout)
    assert report["version"] == report["distribution_version"] == version
    assert report["models"] and all(len(labels) == len(ROWS) for labels in report["labels"].values())


def installed(project: Path, index: ModelsIndex) -> str:
    return run([project / ".venv" / "bin" / "python", "-c", "import mymodel; print(mymodel.__version__)"],
               env=index.client_env(project)).stdout.strip()


def pinned_in(text: str) -> list[str]:
    """The mymodel versions a requirements file or lock names."""
    return re.findall(r"mymodel==([0-9][^\s;\\]*)", text)


def test_pip(models_index, tmp_path):
    index, recipe = models_index, models_index.recipe("pip")
    project = fresh_project(tmp_path, index, seed_pip=True)
    listed = index.run(project, recipe.step("list"))
    assert OLD in listed and PINNED in listed
    index.run(project, recipe.step("install"))
    predicts(project, index, PINNED)
    index.run(project, recipe.step("rollback"))
    assert installed(project, index) == OLD
    index.run(project, recipe.step("lock"))
    lock = tomllib.loads((project / "pylock.toml").read_text())
    model = next(p for p in lock["packages"] if p["name"] == "mymodel")
    assert model["version"] == PINNED and re.fullmatch(r"[0-9a-f]{64}", model["wheels"][0]["hashes"]["sha256"])
    assert all("hashes" in wheel for p in lock["packages"] for wheel in p.get("wheels", []))
    index.run(project, recipe.step("install-locked"))
    assert installed(project, index) == PINNED
    index.run(project, index.recipe("pip", RANGE).step("lock"))
    assert next(p for p in tomllib.loads((project / "pylock.toml").read_text())["packages"]
                if p["name"] == "mymodel")["version"] == PINNED  # the yanked 1.1.3 skipped
    index.run(project, index.recipe("pip", f"mymodel=={YANKED}").step("lock"))
    assert next(p for p in tomllib.loads((project / "pylock.toml").read_text())["packages"]
                if p["name"] == "mymodel")["version"] == YANKED  # an exact pin still gets it
    index.run(project, recipe.step("download"))
    assert [p.name for p in (project / "wheels").iterdir()] == [f"mymodel-{PINNED}-py3-none-any.whl"]


def test_uv_pip(models_index, tmp_path):
    index, recipe = models_index, models_index.recipe("uv")
    project = fresh_project(tmp_path, index)
    index.run(project, recipe.step("install"))
    predicts(project, index, PINNED)
    index.run(project, recipe.step("rollback"))
    assert installed(project, index) == OLD
    index.paste(project, recipe)
    index.run(project, recipe.step("lock"))
    lock = (project / "requirements.txt").read_text()
    assert pinned_in(lock) == [PINNED] and f"--index-url {index.url}" in lock
    assert lock.count("--hash=sha256:") >= 6  # mymodel and every dependency
    index.run(project, recipe.step("install-locked"))
    assert installed(project, index) == PINNED
    for requirement, resolved in ((RANGE, PINNED), (f"mymodel=={YANKED}", YANKED)):
        changed = index.recipe("uv", requirement)
        index.paste(project, changed)
        index.run(project, changed.step("lock"))
        assert pinned_in((project / "requirements.txt").read_text()) == [resolved]


def project_client(index: ModelsIndex, project: Path, client: str, locked, written: str) -> None:
    """A project client's recipe (uv project, Poetry, pdm): add the pin (lock and install), then
    import and predict; a range and the yanked pin added in turn; the rollback; re-lock and sync.
    ``locked(project)`` reads the version the lock file records (and checks its sha256s)."""
    recipe = index.recipe(client)
    index.paste(project, recipe)
    for name in ("configure",) if client == "poetry" else ():
        index.run(project, recipe.step(name))
    index.run(project, recipe.step("install"))
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"] == [written]
    predicts(project, index, PINNED)
    assert locked(project) == PINNED
    for requirement, resolved in ((RANGE, PINNED), (f"mymodel=={YANKED}", YANKED)):
        index.run(project, index.recipe(client, requirement).step("install"))
        assert locked(project) == resolved and installed(project, index) == resolved
    index.run(project, recipe.step("rollback"))
    assert locked(project) == OLD and installed(project, index) == OLD
    index.run(project, recipe.step("lock"))
    index.run(project, recipe.step("install-locked"))
    assert locked(project) == OLD and installed(project, index) == OLD


def lock_entry(project: Path, lock_file: str) -> dict:
    return next(p for p in tomllib.loads((project / lock_file).read_text())["package"] if p["name"] == "mymodel")


def locked_uv(project: Path) -> str:
    model = lock_entry(project, "uv.lock")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", model["wheels"][0]["hash"])
    return model["version"]


def locked_poetry(project: Path) -> str:
    model = lock_entry(project, "poetry.lock")
    assert model["source"]["reference"] == "models"
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", f["hash"]) for f in model["files"])
    return model["version"]


def locked_pdm(project: Path) -> str:
    """The version of the file pdm.lock records (for a range, its version field drops the label:
    1.1.2, with the 1.1.2+titanic wheel's name and sha256 as the only file)."""
    model = lock_entry(project, "pdm.lock")
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", f["hash"]) for f in model["files"])
    (version,) = {re.match(r"mymodel-(.+?)(?:-py3-none-any\.whl|\.tar\.gz)$", f["file"]).group(1) for f in model["files"]}
    return version


def test_uv_project(models_index, tmp_path):
    """From a folder with no pyproject.toml: the recipe's uv init first."""
    project = fresh_project(tmp_path, models_index)
    models_index.run(project, models_index.recipe("uv-project").step("init"))
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"] == []
    project_client(models_index, project, "uv-project", locked_uv, f"mymodel=={PINNED}")


def test_poetry(models_index, tmp_path):
    project = fresh_project(tmp_path, models_index, project_file=True)
    with open(project / "pyproject.toml", "a", encoding="utf-8") as file:
        file.write("\n[tool.poetry]\npackage-mode = false\n")
    # The stand-in for the default index (this machine's registry answers no per-version JSON).
    models_index.run(project, consumers.Step("", "", (f"poetry source add --priority=primary dependencies "
                                                      f"{models_index.url}",)))
    project_client(models_index, project, "poetry", locked_poetry, f"mymodel (=={PINNED})")
    source = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["poetry"]["dependencies"]["mymodel"]
    assert source == {"source": "models"}


def test_pdm(models_index, tmp_path):
    project = fresh_project(tmp_path, models_index, project_file=True)
    with open(project / "pyproject.toml", "a", encoding="utf-8") as file:
        file.write("\n[tool.pdm]\ndistribution = false\n")
    project_client(models_index, project, "pdm", locked_pdm, f"mymodel=={PINNED}")


def test_pip_tools(models_index, tmp_path):
    index, recipe = models_index, models_index.recipe("pip-tools")
    project = fresh_project(tmp_path, index, seed_pip=True)
    index.paste(project, recipe)
    index.run(project, recipe.step("lock"))
    lock = (project / "requirements.txt").read_text()
    assert pinned_in(lock) == [PINNED] and not re.search(r"^--index-url", lock, re.M)  # the header names it
    assert lock.count("--hash=sha256:") >= 6
    index.run(project, recipe.step("install-locked"))
    predicts(project, index, PINNED)
    for requirement, resolved in ((RANGE, PINNED), (f"mymodel=={YANKED}", YANKED)):
        changed = index.recipe("pip-tools", requirement)
        index.paste(project, changed)
        index.run(project, changed.step("lock"))
        assert pinned_in((project / "requirements.txt").read_text()) == [resolved]
    index.run(project, recipe.step("rollback"))
    assert pinned_in((project / "requirements.txt").read_text()) == [OLD] and installed(project, index) == OLD


def info_version(info: str) -> str:
    """The version ``mymodel info`` names on its first line (its release notes name the one before)."""
    return re.match(r"mymodel (\S+) ", info).group(1)


def test_pipx(models_index, tmp_path):
    index, recipe = models_index, models_index.recipe("pipx")
    project = tmp_path / "project"
    project.mkdir()
    index.run(project, recipe.step("install"))
    assert info_version(index.run(project, recipe.step("run"))) == PINNED
    python = index.home / "pipx" / "venvs" / "mymodel" / "bin" / "python"
    predicts(project, index, PINNED, python)
    index.run(project, recipe.step("rollback"))
    assert info_version(index.run(project, recipe.step("run"))) == OLD


@pytest.fixture(scope="module")
def private_index(models_index, released, tmp_path_factory):
    """The same packages on an index whose reads need credentials (INDEX_AUTH=read): (its URL,
    the read-only password from reader.json)."""
    tmp = tmp_path_factory.mktemp("private")
    env = index_env(tmp, INDEX_AUTH="read", INDEX_DIR=models_index.env["INDEX_DIR"])
    pipeline(released.repo, env, "index")
    yield index_url(env) + "simple/", json.loads((tmp / "state" / "reader.json").read_text())["password"]
    pipeline(released.repo, env, "index-stop", check=False)


def exports(recipe: consumers.Recipe) -> str:
    return "".join(text + "\n" for where, text in recipe.paste if where.startswith("your environment"))


# A project client's lock step after the pin is written into pyproject.toml (what the add step writes).
WRITTEN = {"uv-project": f'dependencies = ["mymodel=={PINNED}"]',
           "pdm": f'dependencies = ["mymodel=={PINNED}"]',
           "poetry": f'dependencies = ["mymodel (=={PINNED})"]\n[tool.poetry]\npackage-mode = false\n'
                     '[tool.poetry.dependencies]\nmymodel = { source = "models" }'}
LOCKS = {"pip": "pylock.toml", "uv": "requirements.txt", "pip-tools": "requirements.txt", "uv-project": "uv.lock",
         "poetry": "poetry.lock", "pdm": "pdm.lock"}


@pytest.mark.parametrize("client", sorted(LOCKS))
def test_private_reads_resolve_with_the_printed_credential(client, models_index, private_index, tmp_path):
    """Each client's lock, as printed for INDEX_AUTH=read with the password from reader.json filled
    in, resolves the pin from the private index, and no lock holds the password."""
    url, password = private_index
    home = tmp_path / "home"  # its own ~/.netrc
    home.mkdir()
    index = ModelsIndex(models_index.env, home)
    where = consumers.Target("mymodel", url, f"mymodel=={PINNED}", f"mymodel=={OLD}", private=True,
                             reader="mymodel-reader", reader_file="reader.json")
    printed = consumers.recipe(client, where)
    def filled(text: str) -> str:
        return re.sub(rf"\b{consumers.PASSWORD}\b", password, text)

    recipe = consumers.Recipe(client, printed.summary, tuple((name, filled(text)) for name, text in printed.paste),
                              tuple(consumers.Step(s.name, s.comment, tuple(map(filled, s.commands)))
                                    for s in printed.steps))
    assert password not in "".join(c for s in recipe.steps for c in s.commands)  # in files and exports only
    project = fresh_project(tmp_path, index, seed_pip=client == "pip", project_file=client in WRITTEN)
    if client in WRITTEN:
        (project / "pyproject.toml").write_text(PROJECT.replace("dependencies = []", WRITTEN[client]))
    if client == "poetry":  # the stand-in for the default index, as in test_poetry
        index.run(project, consumers.Step("", "", (f"poetry source add --priority=primary dependencies {index.url}",)))
        index.run(project, recipe.step("configure"), exports(recipe))
    index.paste(project, recipe)
    index.run(project, recipe.step("lock"), exports(recipe))
    lock = (project / LOCKS[client]).read_text()
    assert PINNED in lock and password not in lock


def test_make_consumer_pins_this_clones_last_release_and_rolls_back_to_the_one_before(released):
    """Without VERSION= and ROLLBACK=: the version make released prints, and the one released before it."""
    old, new = released.versions
    printed = make(released.repo, "consumer", released.env, "CLIENT=uv").stdout
    where = consumers.target("mymodel", released.simple_url, new, old)
    assert printed == consumers.recipe("uv", where).render()
    assert f"mymodel=={new}" in printed and f"mymodel=={old}" in printed


CHANNEL = "follow"  # on the session's released index, where test_channels.py promotes to channels of its own
# How each client starts following the channel, from a fresh project: the recipe's steps in this order.
STARTS = {"pip-tools": ("lock", "install-locked")}
LOCKED = {"uv-project": locked_uv, "poetry": locked_poetry, "pdm": locked_pdm,
          "pip-tools": lambda project: "".join(pinned_in((project / "requirements.txt").read_text()))}


class Follower:
    """One client's project following a channel with the commands ``make consumer CLIENT=<client>
    CHANNEL=<channel>`` prints (the same recipe: consumers.target with a channel)."""

    def __init__(self, client: str, index: ModelsIndex, root: Path, repo: Path) -> None:
        self.client, self.index = client, index
        self.recipe = consumers.recipe(client, consumers.target("mymodel", index.url, None, None, CHANNEL))
        assert make(repo, "consumer", index.env, f"CLIENT={client}", f"CHANNEL={CHANNEL}").stdout == self.recipe.render()
        root.mkdir()
        self.project = fresh_project(root, index, seed_pip=client in ("pip", "pip-tools"),
                                     project_file=client in ("uv-project", "poetry", "pdm"))
        tool = {"poetry": "\n[tool.poetry]\npackage-mode = false\n", "pdm": "\n[tool.pdm]\ndistribution = false\n"}
        if client in tool:
            with open(self.project / "pyproject.toml", "a", encoding="utf-8") as file:
                file.write(tool[client])
        if client == "poetry":  # the stand-in for the default index, as in test_poetry
            index.run(self.project, consumers.Step("", "", (f"poetry source add --priority=primary dependencies "
                                                            f"{index.url}",)))

    def start(self) -> None:
        self.index.paste(self.project, self.recipe)
        for name in STARTS.get(self.client, ("configure", "install")):
            if any(step.name == name for step in self.recipe.steps):
                self.index.run(self.project, self.recipe.step(name))

    def follow(self) -> None:
        self.index.run(self.project, self.recipe.step("follow"))

    def version(self) -> str:
        """The version installed (pipx: the one its ``mymodel info`` names), and the one the lock holds."""
        if self.client == "pipx":
            return info_version(self.index.run(self.project, self.recipe.step("run")))
        version = installed(self.project, self.index)
        if self.client in LOCKED:
            assert LOCKED[self.client](self.project) == version, self.client
        return version


def test_each_clients_printed_channel_recipe_follows_a_promotion_and_a_rollback(models_index, released, tmp_path):
    """make consumer CLIENT=<c> CHANNEL=<channel> for every client, on the released index (both
    versions with their sdists: make promote wants both): started while the channel serves A,
    then each client's printed follow after promoting B, and again after promoting A back (a rollback)."""
    old, new = released.versions
    home = tmp_path / "home"  # its own pipx venvs (test_pipx installs mymodel there), the module's caches
    home.mkdir()
    (models_index.home / ".cache").mkdir(exist_ok=True)
    (home / ".cache").symlink_to(models_index.home / ".cache")
    index = ModelsIndex(released.env, home)
    followers = [Follower(client, index, tmp_path / client, released.repo) for client in consumers.CLIENTS]

    def promote(version: str) -> None:
        make(released.repo, "promote", index.env, f"VERSION={version}", f"CHANNEL={CHANNEL}")

    promote(old)
    for follower in followers:
        follower.start()
    assert {f.client: f.version() for f in followers} == {client: old for client in consumers.CLIENTS}
    for version in (new, old):  # a promotion, then a rollback promotion
        promote(version)
        for follower in followers:
            follower.follow()
        assert {f.client: f.version() for f in followers} == {client: version for client in consumers.CLIENTS}


def test_pips_channel_follow_installs_a_dependency_the_promoted_version_adds(models_index, released, tmp_path):
    """pip's printed follow command after a promotion to a version that requires one more library
    (lightgbm): installed with it (--force-reinstall --no-deps alone left it out), and back after a rollback."""
    old, new = released.versions[0], "1.1.4+titanic"
    env = index_env(tmp_path)
    packages = Path(env["INDEX_DIR"])
    fill_index(packages)
    served = Path(released.env["INDEX_DIR"])
    for name in (f"mymodel-{old}-py3-none-any.whl", f"mymodel-{old}.tar.gz"):
        os.link(served / name, packages / name)
    renamed_wheel(served / f"mymodel-{released.versions[1]}-py3-none-any.whl", packages, "mymodel", new,
                  requires=("lightgbm>=4.7,<4.8",))
    small_sdist(packages, "mymodel", new)
    pipeline(released.repo, env, "index")
    try:
        index = ModelsIndex(env, models_index.home)  # the module's caches
        recipe = consumers.recipe("pip", consumers.target("mymodel", index.url, None, None, "deps"))
        project = fresh_project(tmp_path, index, seed_pip=True)
        python = project / ".venv" / "bin" / "python"

        def has_lightgbm() -> bool:
            return run([python, "-c", "import lightgbm"], env=index.client_env(project), check=False).returncode == 0

        for version, requires_lightgbm in ((old, False), (new, True), (old, True)):
            make(released.repo, "promote", env, f"VERSION={version}", "CHANNEL=deps")
            index.run(project, recipe.step("install" if version == old and not requires_lightgbm else "follow"))
            assert installed(project, index) == version
            assert has_lightgbm() == requires_lightgbm  # a rollback keeps what the newer version brought
        run([python, "-m", "pip", "check"], env=index.client_env(project))
    finally:
        pipeline(released.repo, env, "index-stop", check=False)
