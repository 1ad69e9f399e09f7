"""Bad input at the command line: one clear line, a non-zero exit, no traceback."""

import pytest

from pipeline.steps.versioning import version_file_text
from tests.helpers import PYTHON, REPO, VENV, assert_clean_error, copy_repo, index_env, make, run


@pytest.fixture()
def env(tmp_path):
    return index_env(tmp_path)


@pytest.mark.parametrize("args, fragments", [
    (["version", "--bump", "banana"], ["BUMP='banana' is not a bump", "logic"]),
    (["version", "--data", "Titanic_v2"], ["use DATA=titanic.v2"]),
    (["version", "--data", "titanic v2"], ["cannot be a PEP 440 local label"]),
    (["lock"], ["needs VERSION=X.Y.Z+tag"]),
    (["lock", "--version", "1.1.1-titanic.from-kaggle"], ["not a PEP 440 version"]),
    (["verify", "--version", "banana"], ["not a PEP 440 version"]),
    (["index", "--auth", "everyone"], ["INDEX_AUTH='everyone' is not one of update, read"]),
    (["index-status", "--port", "http"], ["INDEX_PORT='http' is not a port number"]),
])
def test_bad_arguments(env, args, fragments):
    assert_clean_error(run([PYTHON, "-m", "pipeline", *args], cwd=REPO, env=env, check=False), *fragments)


def test_bad_bump_from_the_environment(env):
    result = run([PYTHON, "-m", "pipeline", "version"], cwd=REPO, env={**env, "BUMP": "banana"}, check=False)
    assert_clean_error(result, "BUMP='banana'")


def test_training_on_a_missing_file(env, tmp_path):
    result = run([PYTHON, "-m", "pipeline", "train", "--data-file", str(tmp_path / "none.csv")],
                 cwd=REPO, env=env, check=False)
    assert_clean_error(result, "does not exist")


def test_version_without_an_index_uses_the_repo_record(env):
    result = run([PYTHON, "-m", "pipeline", "version", "--bump", "interface"], cwd=REPO, env=env)
    assert result.stdout.strip().endswith("+titanic")
    assert "not running" in result.stderr


def test_released_prints_only_the_last_release_or_says_there_is_none(env, tmp_path):
    repo = copy_repo(tmp_path / "repo")  # the record of a clone that never released
    assert_clean_error(make(repo, "released", env, check=False), "this clone has released nothing yet",
                       "run make release first")
    (repo / "src/mymodel/version.py").write_text(version_file_text("1.1.2+titanic"))
    assert_clean_error(make(repo, "released", env, check=False), "releases/ has no mymodel-1.1.2+titanic.txt")
    (repo / "releases/mymodel-1.1.2+titanic.txt").write_text("mymodel==1.1.2+titanic --hash=sha256:00\n")
    # What the docs' V=$(make -s released) captures: the version alone.
    assert run(["make", "-s", "-C", repo, "released", f"VENV={VENV}"], env=env).stdout == "1.1.2+titanic\n"
