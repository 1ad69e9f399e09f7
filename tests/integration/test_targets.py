"""Every Make target, run the way a user runs it, in a clone with its own index."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import assert_clean_error, copy_repo, edit_config, index_env, make, run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("targets")
    repo = copy_repo(tmp / "repo")
    env = index_env(tmp, BUMP="patch")  # releases publish the same models again
    yield repo, env
    make(repo, "index-stop", env, check=False)


def onnx_yanks(env: dict[str, str]) -> list:
    """The PEP 691 ``yanked`` field of each mymodel-onnx file the index lists."""
    request = urllib.request.Request(f"http://127.0.0.1:{env['INDEX_PORT']}/simple/mymodel-onnx/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return [entry.get("yanked", False) for entry in json.load(response)["files"]]


def test_step_by_step_targets(clone):
    repo, env = clone
    assert "not running" in make(repo, "index-status", env).stdout
    assert make(repo, "venv", env).returncode == 0
    started = make(repo, "index", env).stdout
    assert f"running at http://127.0.0.1:{env['INDEX_PORT']}/" in started and "credentials.json" in started
    assert "running at" in make(repo, "index", env).stdout  # twice is harmless
    assert make(repo, "version", env).stdout.strip() == "1.1.1+titanic"
    assert make(repo, "version", env, "BUMP=interface", "DATA=titanic.v2").stdout.strip() == "1.2.0+titanic.v2"

    assert_clean_error(make(repo, "build", env, check=False), "no trained models", "make train")
    trained = make(repo, "train", env).stdout
    assert "saved 3 models" in trained and "roc_auc" in trained
    built = make(repo, "build", env).stdout
    assert ("mymodel-1.1.1+titanic.tar.gz and mymodel-1.1.1+titanic-py3-none-any.whl and "
            "mymodel_onnx-1.1.1+titanic-py3-none-any.whl") in built
    # The -onnx wheel goes up last: a failure there takes the whole version back, from both projects.
    failed = make(repo, "upload", env, "RELEASE_FAULT=onnx-upload", check=False)
    assert_clean_error(failed, "injected fault at onnx-upload", "removed the partial 1.1.1+titanic from the index",
                       "removed the partial mymodel-onnx 1.1.1+titanic from the index too")
    assert not list(Path(env["INDEX_DIR"]).glob("mymodel*1.1.1*")) and not list(repo.glob("releases/*1.1.1*"))
    # Its number is burned: the build of 1.1.1 in dist/ is never published; the next build is 1.1.2.
    assert_clean_error(make(repo, "upload", env, check=False), "1.1.1+titanic was used before (taken back on ",
                       "a number is used once; release 1.1.2+titanic instead")
    rebuilt = make(repo, "build", env)
    assert "1.1.1+titanic was used before (taken back on " in rebuilt.stdout + rebuilt.stderr
    assert "mymodel-1.1.2+titanic.tar.gz and mymodel-1.1.2+titanic-py3-none-any.whl" in rebuilt.stdout
    uploaded = make(repo, "upload", env).stdout
    assert "published 1.1.2+titanic" in uploaded
    assert '"1.1.2+titanic"' in (repo / "src/mymodel/version.py").read_text()
    assert_clean_error(make(repo, "upload", env, check=False), "1.1.2+titanic is already on the index")

    lock = make(repo, "lock", env, "VERSION=1.1.2+titanic").stdout
    assert lock == (repo / "releases/mymodel-1.1.2+titanic.txt").read_text()
    assert lock.count("--hash=sha256:") == 2
    onnx_lock = make(repo, "lock", env, "VERSION=1.1.2+titanic", "ONNX=1").stdout
    wheel = repo / "dist" / "mymodel_onnx-1.1.2+titanic-py3-none-any.whl"
    assert f"mymodel-onnx==1.1.2+titanic \\\n    --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}\n" in onnx_lock
    assert onnx_lock.count("--hash=sha256:") == 1 and sorted(p.name for p in repo.glob("releases/*.txt")) == [
        "mymodel-1.1.2+titanic.txt"]  # the release records mymodel's lock only
    assert_clean_error(make(repo, "lock", env, "VERSION=9.9.9+titanic", check=False), "is not on")

    # A yank covers the -onnx twin of the version, and so does unyank.
    yanked = make(repo, "yank", env, "VERSION=1.1.2+titanic", "REASON=bad data").stdout
    assert "yanked mymodel 1.1.2+titanic: bad data" in yanked and "yanked mymodel-onnx 1.1.2+titanic: bad data" in yanked
    assert onnx_yanks(env) == ["bad data"]
    assert "unyanked mymodel-onnx 1.1.2+titanic" in make(repo, "unyank", env, "VERSION=1.1.2+titanic").stdout
    assert onnx_yanks(env) == [False]

    status = make(repo, "index-status", env).stdout
    assert "running at" in status and str(env["INDEX_DIR"]) in status
    assert "stopped" in make(repo, "index-stop", env).stdout
    assert "was not running" in make(repo, "index-stop", env).stdout


def test_verify_rebuilds_a_published_version_byte_for_byte(clone):
    repo, env = clone
    make(repo, "index", env)
    published = make(repo, "release", env).stdout
    assert "released mymodel 1.1.3+titanic" in published
    same = make(repo, "verify", env, "VERSION=1.1.3+titanic")
    assert "reproducible: the rebuilt wheel is byte-identical" in same.stdout
    assert "and so is the mymodel-onnx wheel" in same.stdout

    # Another commit (different seed): the rebuilt wheel differs, and make verify says why.
    edit_config(repo, "seed = 0", "seed = 1")
    different = make(repo, "verify", env, "VERSION=1.1.3+titanic", check=False)
    assert different.returncode != 0 and "verify] Error 1" in different.stderr  # the pipeline exited 1
    assert "NOT reproducible" in different.stdout and "git checkout" in different.stdout
    run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=repo)


def test_clean_removes_outputs_and_keeps_the_index(clone):
    repo, env = clone
    assert (repo / "dist").is_dir() and (repo / "src/mymodel/models").is_dir()
    make(repo, "clean", env)
    assert not (repo / "dist").exists() and not (repo / "src/mymodel/models").exists()
    assert list(Path(env["INDEX_DIR"]).glob("mymodel-*"))
    assert (repo / "src/mymodel/__init__.py").is_file()


def test_test_targets_run_their_suites(clone):
    repo, env = clone
    unit = make(repo, "unit", env, "UNIT_TESTS=tests/unit/test_versioning.py pipeline/steps/versioning.py")
    assert " passed" in unit.stdout and "failed" not in unit.stdout
    selected = "INTEGRATION_TESTS=tests/integration/test_index.py::test_index_binds_to_loopback_only"
    integration = make(repo, "integration", env, selected)
    assert "1 passed" in integration.stdout
    both = make(repo, "test", env, "UNIT_TESTS=tests/unit/test_schema.py", selected)
    unit = re.search(r"^==== unit: its whole output.*?^==== unit: end ====$", both.stdout, re.MULTILINE | re.DOTALL)
    unit_tests = int(re.search(r"^(\d+) passed", unit.group(0), re.MULTILINE).group(1))  # its closing line
    assert re.search(r"^==> unit: \d+ tests .*^<== unit: \d+ ok in \d+s$", both.stdout, re.MULTILINE | re.DOTALL)
    assert re.search(r"^==> index: 1 tests .*^<== index: 1 ok in \d+s$", both.stdout, re.MULTILINE | re.DOTALL)
    assert re.search(r"^groups: unit \d+s, index \d+s; total \d+s$", both.stdout, re.MULTILINE)
    # CI reads pytest's closing line, last: here the groups' together
    assert re.fullmatch(rf"{unit_tests + 1} passed in [\d.]+s \(.*\)", both.stdout.splitlines()[-1])


def test_ambiguous_and_backward_versions_are_refused(clone):
    repo, env = clone
    make(repo, "index", env)
    make(repo, "train", env)
    published = make(repo, "version", env).stdout  # the index has 1.1.2 and 1.1.3 (1.1.1 was taken back)
    assert published.strip() == "1.1.4+titanic"
    for version, fragment in (("1.1.3+iris", "pip install mymodel==1.1.3 would pick one silently; release 1.1.4+iris"),
                              ("1.0.5+titanic", "lower than 1.1.3+titanic")):
        make(repo, "build", env, f"VERSION={version}")
        assert_clean_error(make(repo, "upload", env, f"VERSION={version}", check=False), fragment)
    assert sorted(p.name for p in Path(env["INDEX_DIR"]).glob("mymodel-*")) == [
        "mymodel-1.1.2+titanic-py3-none-any.whl", "mymodel-1.1.2+titanic.tar.gz",
        "mymodel-1.1.3+titanic-py3-none-any.whl", "mymodel-1.1.3+titanic.tar.gz"]
