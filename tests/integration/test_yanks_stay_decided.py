"""A yank stays decided (issue 27.4): the next ``make release`` refuses to publish the yanked models
again under another number (``FORCE=1`` publishes them and the package records it), and ``make
released`` and ``make consumer`` never hand out a yanked version without naming it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tests.helpers import VENV, assert_clean_error, copy_repo, edit_config, index_env, make, pipeline, run, train_quickly

pytestmark = pytest.mark.integration

FIRST, YANKED, FORCED = "1.1.1+titanic", "1.1.2+titanic", "1.1.3+titanic"
REASON = "bad split"


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone that released FIRST, then YANKED (another split seed) to its own index."""
    tmp = tmp_path_factory.mktemp("yanks")
    repo, env = copy_repo(tmp / "repo"), index_env(tmp)
    train_quickly(repo)
    make(repo, "release", env)
    edit_config(repo, "seed = 0", "seed = 2")
    assert f"released mymodel {YANKED}" in make(repo, "release", env).stdout
    yield repo, env
    pipeline(repo, env, "index-stop", check=False)


def released(repo: Path, env: dict) -> tuple[str, str]:
    """What the README's ``V=$(make -s released)`` captures (stdout), and what it shows on stderr."""
    result = run(["make", "-s", "-C", repo, "released", f"VENV={VENV}"], env=env)
    return result.stdout, result.stderr


def index_files(env: dict) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(env["INDEX_DIR"]).glob("mymodel*")}


def test_a_yank_is_not_undone_by_the_next_release_nor_handed_out_to_consumers(clone):
    repo, env = clone
    assert released(repo, env) == (f"{YANKED}\n", "")
    make(repo, "yank", env, f"VERSION={YANKED}", f"REASON={REASON}")

    pin, said = released(repo, env)
    assert pin == f"{FIRST}\n"  # the idiom's pip install gets a version that is not yanked
    assert said == (f"warning: mymodel {YANKED}, this clone's last release, is yanked ({REASON}): {FIRST} is the newest "
                    f"release of this clone that is not (make unyank VERSION={YANKED} hands it out again)\n")
    recipe = make(repo, "consumer", env, "CLIENT=pip").stdout
    assert recipe.startswith(f"# note: mymodel {YANKED}, this clone's last release, is yanked ({REASON}): {FIRST}")
    commands = [line for line in recipe.splitlines() if not line.startswith("#")]
    assert f"python -m pip install --index-url {env_url(env)} mymodel=={FIRST}" in commands
    assert not any(YANKED in line for line in commands), recipe
    assert "'mymodel==<earlier X.Y.Z+tag>'" in recipe  # nothing released before FIRST

    # Nothing changed since the yanked release: its models are not published again under 1.1.3.
    before, recorded = index_files(env), (repo / "src/mymodel/version.py").read_text()
    refused = make(repo, "release", env, check=False)
    assert_clean_error(refused, f"the trained models are byte-identical to those of mymodel {YANKED} ({REASON}), "
                                "which is yanked: publishing them again would undo the yank",
                       f"make unyank VERSION={YANKED}", "change or revert the code", "FORCE=1")
    assert "==> build" not in refused.stdout
    assert index_files(env) == before and (repo / "src/mymodel/version.py").read_text() == recorded

    forced = make(repo, "release", env, "FORCE=1").stdout
    assert f"the trained models are those of yanked mymodel {YANKED} ({REASON}): FORCE=1 releases them anyway" in forced
    assert f"released mymodel {FORCED}" in forced
    with zipfile.ZipFile(repo / f"dist/mymodel-{FORCED}-py3-none-any.whl") as wheel:
        notes = json.loads(wheel.read("mymodel/models/manifest.json"))["release"]
    assert notes["yank_overridden"] == {"yanked": YANKED, "reason": REASON, "also": []}

    assert released(repo, env) == (f"{FORCED}\n", "")
    recipe = make(repo, "consumer", env, "CLIENT=pip").stdout
    assert recipe.startswith(f"# note: the rollback passes over mymodel {YANKED}: yanked ({REASON})\n")
    assert f"python -m pip install --index-url {env_url(env)} mymodel=={FIRST}" in recipe.split("# roll back")[1]
    explicit = make(repo, "consumer", env, "CLIENT=uv", f"VERSION={FORCED}", f"ROLLBACK={YANKED}").stdout
    assert explicit.startswith(f"# note: ROLLBACK={YANKED} is yanked ({REASON}): an exact pin still installs it")

    pipeline(repo, env, "index-stop")  # no index to ask: the record, said to be unchecked
    pin, said = released(repo, env)
    assert pin == f"{FORCED}\n" and said.startswith("warning: could not ask") and "unchecked" in said


def env_url(env: dict) -> str:
    return f"http://127.0.0.1:{env['INDEX_PORT']}/simple/"
