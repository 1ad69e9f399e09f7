"""The package name: one setting ([package] name in dataset.toml), checked, and `make rename`."""

import os
import pty
import subprocess
import tomllib

import pytest

from pipeline.errors import ConfigError
from pipeline.package.package_name import configured_description
from pipeline.package.rename import rename
from pipeline.steps.build import with_description

from pipeline.package.package_name import PackageNameError, check, check_distinct, check_unclaimed, import_name, normalised
from tests.helpers import PYTHON, VENV, assert_clean_error, copy_repo, index_env, make, run


@pytest.mark.parametrize("given, name, module", [
    ("mymodel", "mymodel", "mymodel"),
    ("titanic-survival", "titanic-survival", "titanic_survival"),
    ("Titanic_Survival", "titanic-survival", "titanic_survival"),
    ("titanic.survival", "titanic-survival", "titanic_survival"),
    ("a__b", "a-b", "a_b"),
])
def test_names_are_normalised_and_give_the_import_name(given, name, module):
    assert check(given) == normalised(given) == name
    assert import_name(given) == module


@pytest.mark.parametrize("given, fragments", [
    ("titanic survival", ("not a package name", 'name = "titanic-survival"')),
    ("-titanic", ("not a package name", 'name = "titanic"')),
    ("", ("not a package name",)),
    ("2024-model", ("Python cannot import", 'name = "model-2024"')),
    (7, ("not a package name",)),
])
def test_invalid_names_are_refused_with_the_valid_form(given, fragments):
    with pytest.raises(PackageNameError) as refused:
        check(given)
    for fragment in fragments:
        assert fragment in str(refused.value)


@pytest.mark.parametrize("name, owner", [
    ("json", "the standard library's json"),
    ("sklearn", "the installed scikit-learn's sklearn"),
    ("scikit-learn", "the installed distribution scikit-learn"),
    ("pipeline", "this repository's pipeline/"),
])
def test_names_that_clash_are_refused(name, owner):
    with pytest.raises(PackageNameError, match=owner):
        check_unclaimed(name)


def test_a_free_name_is_accepted():
    check_unclaimed("titanic-survival")
    check_distinct("titanic-survival", "mymodel")
    check_distinct("onnx-titanic", "mymodel")  # only the end names a sibling, only the start a channel


@pytest.mark.parametrize("name, current, fragments", [
    ("titanic-onnx", "mymodel", ("ends in -onnx", "onnx distribution of the package titanic", "NAME=titanic-model")),
    ("titanic-data", "mymodel", ("ends in -data", "data distribution of the package titanic", "NAME=titanic-model")),
    ("mymodel-titanic", "mymodel", ("starts with mymodel-", "a name of the package mymodel's own", "NAME=titanic")),
    ("titanic-survival-prod", "titanic-survival", ("starts with titanic-survival-", "NAME=prod")),
    ("mymodel-2024", "titanic-survival", ("a name of the package mymodel's own", "NAME=model-2024")),
])
def test_names_that_read_as_a_sibling_or_a_channel_are_refused(name, current, fragments):
    with pytest.raises(PackageNameError) as refused:
        check_distinct(name, current)
    for fragment in fragments:
        assert fragment in str(refused.value)


@pytest.fixture
def clone(tmp_path):
    return copy_repo(tmp_path / "repo")


def files_of(repo):
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_make_rename_renames_everything_and_says_what_to_commit(clone, tmp_path):
    trained = clone / "src/mymodel/models/SVC/model.joblib"  # make train's output: ignored by git, moved along
    trained.parent.mkdir(parents=True)
    trained.write_bytes(b"model")
    lock = clone / "requirements.lock"
    locked, lock_mtime = lock.read_text(), lock.stat().st_mtime_ns
    result = make(clone, "rename", index_env(tmp_path), "NAME=Titanic_Survival")
    assert "renamed the package mymodel -> titanic-survival" in result.stdout
    assert "git add -A dataset.toml pyproject.toml MANIFEST.in requirements.lock src" in result.stdout
    assert "first version" in result.stdout
    assert "channels are" not in result.stdout  # channel packages are no longer published
    # The lock's "# via" comments name the project as make requirements writes them; only comments change,
    # so its time is kept and the venv is not reinstalled.
    assert lock.read_text() == locked.replace("mymodel (pyproject.toml:", "titanic-survival (pyproject.toml:")
    assert "mymodel (pyproject.toml:" in locked and "mymodel" not in lock.read_text()
    assert lock.stat().st_mtime_ns == lock_mtime
    assert not [p.name for p in clone.iterdir() if ".rename-" in p.name]  # no temporary file left
    assert not (clone / "src" / "mymodel").exists()
    package = clone / "src" / "titanic_survival"
    assert (package / "__init__.py").is_file() and (package / "store.py").is_file()
    assert tomllib.loads((clone / "dataset.toml").read_text())["package"]["name"] == "titanic-survival"
    project = tomllib.loads((clone / "pyproject.toml").read_text())
    assert project["project"]["name"] == "titanic-survival"
    assert project["project"]["scripts"] == {"titanic-survival": "titanic_survival.__main__:main"}
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "titanic_survival.version.__version__"}
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["titanic_survival"]
    assert list(project["tool"]["setuptools"]["package-data"]) == ["titanic_survival"]
    assert "graft src/titanic_survival/models" in (clone / "MANIFEST.in").read_text()
    assert (package / "version.py").read_text().endswith('__version__ = "1.1.0"\n')
    # git mv: the move is staged as a rename, nothing is left untracked
    status = run(["git", "status", "--porcelain"], cwd=clone).stdout
    assert "R  src/mymodel/__init__.py -> src/titanic_survival/__init__.py" in status
    assert "??" not in status  # the trained models stay ignored under the new name
    assert (package / "models/SVC/model.joblib").read_bytes() == b"model"
    again = make(clone, "rename", index_env(tmp_path), "NAME=titanic-survival")
    assert "already named titanic-survival; nothing to change" in again.stdout
    # make devpi names the package in the install line it prints
    devpi = run(["make", "-n", "--no-print-directory", "-C", clone, "devpi", f"VENV={VENV}"]).stdout
    assert "-m index.devpi start --package titanic-survival" in devpi


@pytest.mark.parametrize("name, fragments", [
    ("titanic survival", ("NAME = 'titanic survival' is not a package name", "NAME=titanic-survival")),
    ("9lives", ("Python cannot import", "NAME=lives-9")),
    ("sklearn", ("clash with the installed scikit-learn's sklearn",)),
    ("titanic-onnx", ("the name titanic-onnx ends in -onnx", "NAME=titanic-model")),
    ("mymodel-prod", ("the name mymodel-prod starts with mymodel-", "a name of the package mymodel's own")),
    ("", ("make rename NAME=titanic-survival",)),
    # Non-ASCII letters that read as ASCII ones (IGNORECASE matched them): ſys would be the standard library's sys
    ("ſys", ("NAME = 'ſys' is not a package name (ASCII letters", "NAME=sys")),
    ("İo", ("NAME = 'İo' is not a package name",)),
    ("titanic\n", ("is not a package name",)),
])
def test_make_rename_refuses_an_invalid_name_and_changes_nothing(clone, tmp_path, name, fragments):
    before = files_of(clone)
    result = make(clone, "rename", index_env(tmp_path), f"NAME={name}", check=False)
    assert_clean_error(result, *fragments)
    assert files_of(clone) == before


def test_make_rename_sets_the_description_the_build_writes_as_the_summary(clone, tmp_path):
    result = make(clone, "rename", index_env(tmp_path), "NAME=titanic-survival",
                  'DESCRIPTION=Titanic survival: the "data" team\'s models')
    expected = 'Titanic survival: the "data" team\'s models'
    assert f"its description (the Summary pip show and the registry page show): {expected!r}" in result.stdout
    config = tomllib.loads((clone / "dataset.toml").read_text())["package"]
    assert config == {"name": "titanic-survival", "description": expected}
    staged = with_description((clone / "pyproject.toml").read_text(), configured_description(clone / "dataset.toml"))
    assert tomllib.loads(staged)["project"]["description"] == expected  # what make build gives setuptools
    refused = make(clone, "rename", index_env(tmp_path), "NAME=other-name", "DESCRIPTION=two\tparts", check=False)
    assert_clean_error(refused, "DESCRIPTION = 'two\\tparts' must be one line")


def test_make_rename_asks_for_the_description_on_a_terminal(clone):
    """stdin a terminal (a pty) and no DESCRIPTION=: the rename asks; the answer becomes the description."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("DESCRIPTION", "NAME")}
    process = subprocess.Popen([PYTHON, "-m", "pipeline", "rename"], cwd=clone, stdin=secondary,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**env, "NAME": "titanic-survival"})
    os.close(secondary)
    os.write(primary, b"Models that read a passenger list\n")
    out, err = process.communicate(timeout=120)
    os.close(primary)
    assert process.returncode == 0, err
    assert "a one-line description of titanic-survival (Enter keeps" in out
    config = tomllib.loads((clone / "dataset.toml").read_text())["package"]
    assert config["description"] == "Models that read a passenger list"


def test_a_rename_that_cannot_write_a_file_changes_nothing(clone):
    """Every file is written beside its target first: one that cannot be (here a folder stands where
    the lock's temporary file goes) stops the rename with nothing moved or rewritten."""
    before = files_of(clone)
    (clone / f".requirements.lock.rename-{os.getpid()}").mkdir()
    with pytest.raises(ConfigError, match="cannot write beside .*requirements.lock .*nothing was changed"):
        rename(clone, "mymodel", "titanic-survival")
    (clone / f".requirements.lock.rename-{os.getpid()}").rmdir()
    assert files_of(clone) == before
    assert run(["git", "status", "--porcelain"], cwd=clone).stdout == ""


def test_a_hand_edited_name_without_its_folder_is_a_clean_error(clone, tmp_path):
    config = clone / "dataset.toml"
    config.write_text(config.read_text().replace('name = "mymodel"', 'name = "titanic-survival"'))
    result = make(clone, "version", index_env(tmp_path), check=False)
    assert_clean_error(result, "src/titanic_survival/ is not there", "make rename NAME=")


def test_an_invalid_name_in_dataset_toml_is_a_clean_error(clone, tmp_path):
    config = clone / "dataset.toml"
    config.write_text(config.read_text().replace('name = "mymodel"', 'name = "my model"'))
    result = make(clone, "version", index_env(tmp_path), check=False)
    assert_clean_error(result, "[package] name = 'my model' is not a package name", 'name = "my-model"')


def test_a_pyproject_name_that_differs_from_dataset_toml_is_a_clean_error(clone, tmp_path):
    project = clone / "pyproject.toml"
    project.write_text(project.read_text().replace('name = "mymodel"', 'name = "othermodel"', 1))
    result = make(clone, "build", index_env(tmp_path), check=False)
    assert_clean_error(result, "pyproject.toml names the package 'othermodel', dataset.toml [package] name 'mymodel'",
                       "make rename NAME=")


def test_the_index_owns_the_name_it_was_started_with(monkeypatch):
    from index import owned_package
    from index.uploads import SDIST, WHEEL, kinds, owned

    monkeypatch.setitem(owned_package._configured, "name", owned_package.name())  # restored afterwards
    owned_package.configure("Titanic_Survival")  # python -m index.server --package Titanic_Survival
    assert owned("titanic-survival") and owned("Titanic_Survival.prod") and not owned("mymodel")
    assert kinds("titanic-survival") == (SDIST, WHEEL) and kinds("titanic-survival-prod") == (WHEEL,)
    assert owned_package.import_name() == "titanic_survival"
