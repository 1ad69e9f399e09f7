"""The suite and the release path in a clone as a team keeps it: releases committed,
dist/ and the local index full of earlier builds, the clone's own index running."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pipeline.steps.publish import format_lock
from pipeline.steps.versioning import version_file_text
from tests.helpers import REPO, VENV, commit, consumer_env, copy_repo, fill_index, index_env, make, pipeline, run

pytestmark = pytest.mark.integration
RECORDED = ("1.4.0+titanic", "1.4.1+titanic", "1.4.2+titanic")


def team_clone(tmp: Path) -> Path:
    """A copy whose committed record says it released 1.4.0 to 1.4.2, with builds lying around."""
    repo = copy_repo(tmp / "team")
    (repo / "src/mymodel/version.py").write_text(version_file_text(RECORDED[-1]))
    for version in RECORDED:
        hashes = {f"mymodel-{version}.tar.gz": "a" * 64, f"mymodel-{version}-py3-none-any.whl": "b" * 64}
        (repo / f"releases/mymodel-{version}.txt").write_text(
            format_lock(version, hashes, "http://127.0.0.1:8080/simple/"))
        for folder in ("dist", "index/packages"):
            for name in hashes:
                (repo / folder).mkdir(parents=True, exist_ok=True)
                (repo / folder / name).write_bytes(b"an earlier build")
    commit(repo, "release 1.4.2+titanic")
    return repo


def test_a_clone_with_committed_releases_releases_the_next_version(tmp_path):
    repo = team_clone(tmp_path)
    env = index_env(tmp_path)
    fill_index(Path(env["INDEX_DIR"]))
    try:
        out = make(repo, "release", env).stdout
        assert "released mymodel 1.4.3+titanic" in out
        assert '"1.4.3+titanic"' in (repo / "src/mymodel/version.py").read_text()
        assert sorted(p.name for p in (repo / "releases").glob("mymodel-*.txt")) == sorted(
            f"mymodel-{v}.txt" for v in (*RECORDED, "1.4.3+titanic"))
        uv, cenv = VENV / "bin" / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="hardlink")
        run([uv, "venv", "--quiet", "--python", sys.executable, tmp_path / "venv"], env=cenv)
        python = tmp_path / "venv/bin/python"
        run([uv, "pip", "install", "--quiet", "--python", python, "--index-url",
             f"http://127.0.0.1:{env['INDEX_PORT']}/simple/", "mymodel==1.4.3+titanic"], env=cenv)
        predicted = run([python, "-c", "import mymodel; print(mymodel.__version__, len(mymodel.predict('SVC', "
                         "{'pclass': 1, 'sex': 'female', 'age': 29, 'sibsp': 0, 'parch': 0, 'fare': 211.3, "
                         "'embarked': 'S'})))"], env=cenv, cwd=tmp_path).stdout.split()
        assert predicted == ["1.4.3+titanic", "1"]
    finally:
        pipeline(repo, env, "index-stop", check=False)


# The unit tests that see the clone's history: they run the pipeline or make in it (which read its version
# record, releases/, dist/ and index) or copy it (copy_repo). The other unit tests work on what they write into
# temporary folders, or import the code only, so a clone's history cannot change what they expect; the whole
# unit group runs in every make test already, and running it here again took three of this test's five and a
# half minutes.
CLONE_UNIT_TESTS = ("tests/unit/test_cli_errors.py", "tests/unit/test_consumers.py", "tests/unit/test_docs.py",
                    "tests/unit/test_package_name.py", "tests/unit/test_makefile.py", "tests/unit/test_readme.py")


def test_the_unit_tests_run_in_the_clone_are_those_that_read_or_copy_it():
    """A unit test file that starts to read or copy the clone joins CLONE_UNIT_TESTS (else the nested run
    below would not prove it passes in a team's clone)."""
    reads_the_clone = re.compile(r"\bcopy_repo\(|\bmake\(REPO\b|\"-C\", REPO\b|\"-m\", \"pipeline\"")
    found = {f"tests/unit/{path.name}" for path in sorted((REPO / "tests/unit").glob("test_*.py"))
             if reads_the_clone.search(path.read_text(encoding="utf-8"))}
    assert found <= set(CLONE_UNIT_TESTS), sorted(found - set(CLONE_UNIT_TESTS))


def test_the_suite_passes_in_a_clone_with_committed_releases_and_its_index_running(tmp_path):
    """The tests copy the clone they run in: its history must not change what they expect. The unit tests
    that read or copy the clone (CLONE_UNIT_TESTS) and two integration tests that copy it and run its steps
    run in make test's groups inside such a clone."""
    repo = team_clone(tmp_path)
    env = index_env(tmp_path, INDEX_DIR=str(repo / "index/packages"))
    pipeline(repo, env, "index")
    try:
        selected = ("INTEGRATION_TESTS=tests/integration/test_targets.py::test_step_by_step_targets "
                    "tests/integration/test_faults.py::test_bad_input_changes_nothing")
        result = make(repo, "test", env, f"UNIT_TESTS={' '.join(CLONE_UNIT_TESTS)}", selected, timeout=1200)
        closing = result.stdout.splitlines()[-1]  # the groups' closing line: unit and the two integration tests
        assert re.fullmatch(r"\d+ passed(, \d+ warnings?)? in .*", closing) and "failed: " not in result.stdout, \
            result.stdout
        for group in (r"unit: \d+", "targets: 1", r"faults: \d+"):  # each group's own footer, in its block
            assert re.search(rf"^<== {group} ok in ", result.stdout, re.MULTILINE), result.stdout
        assert '"1.4.2+titanic"' in (repo / "src/mymodel/version.py").read_text()  # the clone's record untouched
    finally:
        pipeline(repo, env, "index-stop", check=False)
