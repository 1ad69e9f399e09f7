"""Releasing to a real devpi-server primary (make devpi) and installing from its replica."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import shutil
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

from index import devpi as devpi_server
from pipeline.indexes.base import version_of
from tests.integration.test_faults import worse_titanic
from tests.helpers import (PYTHON, REPO, VENV, assert_clean_error, consumer_env, copy_repo, edit_config,
                           fill_index, free_port, index_env, make, run)

pytestmark = pytest.mark.integration

FIRST, SECOND = "1.1.1+titanic", "1.1.2+titanic"


class CommandLines:
    """Every process command line on this machine seen while it watches (every 20 ms)."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for path in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    self.seen.add(path.read_bytes())
                except OSError:
                    pass
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def devpi_command_lines() -> CommandLines:
    return CommandLines()


@pytest.fixture(scope="module")
def devpi(tmp_path_factory, devpi_command_lines):
    tmp = tmp_path_factory.mktemp("devpi")
    repo = copy_repo(tmp / "repo")
    # INDEX_PORT and INDEX_STATE of a private embedded index: a release that missed devpi fails elsewhere.
    env = {k: v for k, v in index_env(tmp).items() if not k.startswith(("INDEX_URL", "INDEX_READ", "DEVPI_", "TWINE_"))}
    env.update(DEVPI_PORT=str(free_port()), DEVPI_REPLICA_PORT=str(free_port()))
    try:
        started = make(repo, "devpi", env)
    finally:
        devpi_command_lines.stop()
    try:
        yield repo, env, started.stdout
    finally:
        make(repo, "devpi-stop", env, check=False)


def urls(env: dict[str, str]) -> tuple[str, str]:
    return (f"http://127.0.0.1:{env['DEVPI_PORT']}/mymodel/dev/",
            f"http://127.0.0.1:{env['DEVPI_REPLICA_PORT']}/mymodel/dev/+simple/")


def served_versions(simple_url: str) -> set[str]:
    page = run(["curl", "-sf", "-H", "Accept: application/vnd.pypi.simple.v1+json", f"{simple_url}mymodel/"],
               check=False).stdout
    return {version_of(f["filename"]) for f in json.loads(page)["files"]} if page else set()


def test_make_devpi_keeps_generated_credentials_owner_only_and_starting_twice_is_harmless(devpi):
    repo, env, output = devpi
    state = repo / "index" / ".state" / "devpi"
    assert urls(env)[1] in output
    assert f"make release INDEX=devpi DEVPI_PORT={env['DEVPI_PORT']} DEVPI_REPLICA_PORT={env['DEVPI_REPLICA_PORT']}\n" \
        in output  # the ports it runs on (run by test_release_twice_then_install_from_the_replica...)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in ("credentials.json", "secret"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600
    creds = json.loads((state / "credentials.json").read_text())
    assert creds["password"] not in output and creds["root_password"] not in output
    assert make(repo, "devpi", env).stdout == output  # the running pair is reused, nothing re-created


def test_make_devpi_maps_teams_onto_users_indexes_and_acls(devpi, tmp_path):
    """DEVPI_TEAMS: each team's CI user uploads to its own index and is refused on another team's."""
    from tests.integration.test_index import real_wheel

    repo, env, _ = devpi
    started = make(repo, "devpi", {**env, "DEVPI_TEAMS": "churn,fraud"})
    assert "team churn: index" in started.stdout and "churn-ci (upload" in started.stdout
    state = Path(env.get("DEVPI_STATE") or repo / "index" / ".state" / "devpi")
    creds = json.loads((state / "credentials.json").read_text())
    assert stat.S_IMODE((state / "credentials.json").stat().st_mode) == 0o600
    wheel = real_wheel(tmp_path, "1.0.0", project="churn_model")
    primary = f"http://127.0.0.1:{env['DEVPI_PORT']}"

    def twine(index: str, user: str, stage: str = "dev") -> subprocess.CompletedProcess:
        team = user.removesuffix("-ci")
        secret = {**os.environ, "TWINE_USERNAME": user, "TWINE_PASSWORD": creds["teams"][team][user]}
        return run([VENV / "bin" / "twine", "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
                    f"{primary}/{index}/{stage}/", wheel], env=secret, check=False)

    for stage in ("dev", "dev.staging"):  # a team's release waits in its staging index, then is pushed
        refused = twine("fraud", "churn-ci", stage)
        assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
        assert twine("churn", "churn-ci", stage).returncode == 0
    page = run(["curl", "-sf", f"{primary}/churn/dev/+simple/churn-model/"], check=False).stdout
    assert wheel.name in page  # reads are open


def test_no_process_of_make_devpi_shows_a_password_on_its_command_line(devpi, devpi_command_lines):
    repo, _, _ = devpi
    creds = json.loads((repo / "index/.state/devpi/credentials.json").read_text())
    seen = devpi_command_lines.seen
    assert any(b"devpi-init" in line and b"primary" in line for line in seen)  # it did watch the primary's init
    for name in ("root_password", "password"):  # the message names the password, never shows it
        assert not any(creds[name].encode() in line for line in seen), f"{name} on a command line"


def test_a_fault_mid_upload_takes_the_version_back_on_devpi_and_its_number_is_never_used_again(devpi, tmp_path):
    repo, env, _ = devpi
    release_env, primary, _ = fresh_index(repo, env, "faults")
    failed = make(repo, "release", {**release_env, "RELEASE_FAULT": "after-first-upload"}, check=False)
    assert failed.returncode != 0 and f"removed the partial {FIRST}" in failed.stdout + failed.stderr
    assert served_versions(primary + "+simple/") == set()
    # devpi would take the file name again after a forced delete: the take-back deleted the files only and
    # left the version registered, marked taken back, which every clone's release numbers past
    registered = json.loads(run(["curl", "-sf", "-H", "Accept: application/json", f"{primary}mymodel"]).stdout)["result"]
    assert registered[FIRST]["description"].startswith("taken back by make release on ")
    other = copy_repo(tmp_path / "other", repo)
    numbered = make(other, "version", release_env)
    assert numbered.stdout.strip() == SECOND
    assert f"{FIRST} was used before (taken back on " in numbered.stderr and f"releasing {SECOND}" in numbered.stderr


def test_a_release_killed_between_its_uploads_on_devpi_leaves_nothing_to_install_and_another_clone_takes_it_back(
        devpi, tmp_path):
    repo, env, _ = devpi
    release_env, primary, replica = fresh_index(repo, env, "killed")
    killed = make(copy_repo(tmp_path / "killed"), "release", {**release_env, "RELEASE_FAULT": "after-first-upload:sigkill"},
                  check=False)
    assert killed.returncode != 0, killed.stdout + killed.stderr
    # the lone sdist waits on the staging index; the release index and its replica serve nothing of it
    staging = primary.rstrip("/") + devpi_server.STAGING_SUFFIX + "/+simple/"
    assert [name for name, _ in served_files(staging)] == [f"mymodel-{FIRST}.tar.gz"]
    assert served_versions(primary + "+simple/") == served_versions(replica) == set()
    uv, uv_env = PYTHON.parent / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never")
    run([uv, "venv", "--quiet", "--python", PYTHON, tmp_path / "uv-venv"], env=uv_env)
    for index in (primary + "+simple/", replica):
        pip = run([PYTHON, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-cache-dir", "--index-url", index,
                   "mymodel>=0"], env=consumer_env(), check=False)
        assert pip.returncode != 0 and "No matching distribution found for mymodel" in pip.stderr, pip.stdout
        uv_run = run([uv, "pip", "install", "--dry-run", "--no-deps", "--no-cache", "--python",
                      tmp_path / "uv-venv/bin/python", "--index-url", index, "mymodel>=0"], env=uv_env, check=False)
        assert uv_run.returncode != 0 and "mymodel" in uv_run.stderr, uv_run.stdout
    other = copy_repo(tmp_path / "other")
    assert (f"in progress: mymodel {FIRST} (mymodel-{FIRST}.tar.gz), uploaded"
            in make(other, "versions", release_env).stdout)  # younger than the bound: left alone
    released = make(other, "release", release_env, "INDEX_ABANDONED_AFTER=0").stdout
    assert (f"abandoned: mymodel {FIRST} (mymodel-{FIRST}.tar.gz), uploaded" in released
            and "taken back; its number is not used again" in released), released
    assert f"released mymodel {SECOND}" in released
    assert served_versions(primary + "+simple/") == {SECOND}
    # staging keeps what it pushed (the claim a racing release meets); the abandoned sdist is gone
    assert {version_of(name) for name, _ in served_files(staging)} == {SECOND}
    registered = json.loads(run(["curl", "-sf", "-H", "Accept: application/json", f"{primary}mymodel"]).stdout)["result"]
    assert registered[FIRST]["description"].startswith("taken back by make release on ")


def test_yanking_on_devpi_is_refused_in_one_line(devpi):
    repo, env, _ = devpi
    assert_clean_error(make(repo, "yank", env, "INDEX=devpi", f"VERSION={FIRST}", "REASON=bad", check=False),
                       "devpi does not support yanking on private indexes")


def test_a_replica_that_never_serves_the_release_fails_it_and_takes_it_back(devpi):
    repo, env, _ = devpi
    release_env, primary, _ = fresh_index(repo, env, "unreplicated")
    dead_replica = f"http://127.0.0.1:{free_port()}/mymodel/unreplicated/+simple/"
    failed = make(repo, "release", release_env, f"INDEX_READ_URL={dead_replica}", "INDEX_READ_TIMEOUT=1", check=False)
    assert_clean_error(failed, f"{dead_replica}mymodel/ (INDEX_READ_URL) did not serve mymodel {FIRST}",
                       f"removed the partial {FIRST}")
    assert f"waiting up to 1 s for {dead_replica}mymodel/" in failed.stdout
    assert served_versions(primary + "+simple/") == set()


def replace_served_file(index_url: str, wheel: Path, creds: dict[str, str], tmp_path: Path) -> None:
    """As the index owner: delete ``wheel``'s file from the devpi index at ``index_url`` (its other files
    and its record stay) and upload other bytes under the same name."""
    page_url = f"{index_url}+simple/mymodel/"
    page = json.loads(run(["curl", "-sf", "-H", "Accept: application/vnd.pypi.simple.v1+json", page_url]).stdout)
    url = next(urllib.parse.urljoin(page_url, f["url"]) for f in page["files"] if f["filename"] == wheel.name)
    server = index_url.split("/mymodel/")[0]
    auth = devpi_server.login(server, creds["username"], creds["password"])
    deleting = urllib.request.Request(url.partition("#")[0] + "?force", method="DELETE", headers={"X-Devpi-Auth": auth})
    with urllib.request.urlopen(deleting, timeout=30) as answer:
        assert answer.status == 200
    forged = tmp_path / "forged" / wheel.name
    forged.parent.mkdir()
    shutil.copy(wheel, forged)
    with zipfile.ZipFile(forged, "a") as archive:
        archive.writestr("mymodel/forged.py", "print('nobody promoted this')\n")
    run([PYTHON, "-m", "twine", "upload", "--disable-progress-bar", "--repository-url", index_url, forged],
        env={**os.environ, "TWINE_USERNAME": creds["username"], "TWINE_PASSWORD": creds["password"]})


def printed_release_command(devpi_output: str) -> list[str]:
    """The make arguments of the release line make devpi printed."""
    line = next(line for line in devpi_output.splitlines() if line.strip().startswith("make release INDEX=devpi"))
    return line.split()[2:]


def test_release_twice_then_install_from_the_replica_also_with_the_primary_down(devpi, pip_venv, tmp_path):
    repo, env, output = devpi
    primary, replica = urls(env)
    # The command make devpi printed works as printed, without the DEVPI_* variables it was started with.
    bare = {k: v for k, v in env.items() if not k.startswith("DEVPI_")}
    first = make(repo, "release", bare, *printed_release_command(output)).stdout
    assert f"read back {FIRST} from {replica} after" in first
    assert first.index("read back") < first.index(f"pip install --extra-index-url {replica} mymodel=={FIRST}")
    assert f"uv pip install --index {replica} mymodel=={FIRST}" in first
    creds = json.loads((repo / "index/.state/devpi/credentials.json").read_text())
    # The same, spelled out as anyone would from another host; nothing changed, so BUMP=patch.
    make(repo, "release", env, f"INDEX_URL={primary}", f"INDEX_USERNAME={creds['username']}",
         f"INDEX_PASSWORD={creds['password']}", "BUMP=patch")
    assert served_versions(primary + "+simple/") == {FIRST, SECOND}
    record = json.loads((repo / "index/.state/devpi/primary.json").read_text())
    os.killpg(record["pid"], signal.SIGKILL)
    target = tmp_path / "site"
    run([PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, "--index-url", replica,
         f"mymodel=={FIRST}"], env=consumer_env())
    installed = run([PYTHON, "-c", "import mymodel; print(mymodel.__version__, mymodel.list_models())"],
                    env={**consumer_env(), "PYTHONPATH": str(target)}, cwd=tmp_path).stdout
    assert installed.startswith(FIRST + " [")
    uv, uv_env = PYTHON.parent / "uv", consumer_env(UV_PYTHON_DOWNLOADS="never")  # uv too, the primary still down
    run([uv, "venv", "--quiet", "--python", PYTHON, tmp_path / "uv-venv"], env=uv_env)
    run([uv, "pip", "install", "--quiet", "--no-deps", "--python", tmp_path / "uv-venv/bin/python",
         "--index-url", replica, f"mymodel=={SECOND}"], env=uv_env)
    assert len(list((tmp_path / "uv-venv").glob("lib/python*/site-packages/mymodel-1.1.2+titanic.dist-info"))) == 1
    install_as_printed_in_fresh_venvs(first, replica, tmp_path, pip_venv)


def install_as_printed_in_fresh_venvs(release_output: str, replica: str, tmp_path: Path, pip_venv) -> None:
    """The install lines a devpi release prints, run in fresh venvs with the dependencies from
    the installers' default index: a test index on loopback holding them stands in for it."""
    public = index_env(tmp_path / "public")
    fill_index(Path(public["INDEX_DIR"]))
    run([PYTHON, "-m", "pipeline", "index"], cwd=REPO, env=public)
    try:
        default_index = f"http://127.0.0.1:{public['INDEX_PORT']}/simple/"
        lines = {line.split()[0]: line.split() for line in release_output.splitlines()
                 if f"mymodel=={FIRST}" in line and line.strip().startswith(("pip install", "uv pip install"))}
        assert lines["pip"] == ["pip", "install", "--extra-index-url", replica, f"mymodel=={FIRST}"]
        assert lines["uv"] == ["uv", "pip", "install", "--index", replica, f"mymodel=={FIRST}"]
        uv = PYTHON.parent / "uv"
        uv_env = consumer_env(UV_PYTHON_DOWNLOADS="never", UV_DEFAULT_INDEX=default_index)
        for installer, command in lines.items():
            venv = tmp_path / f"fresh-{installer}"
            if installer == "pip":  # with the pip bundled in Python (ensurepip): nothing fetched
                pip_venv(venv)
                run([venv / "bin/python", "-m", *command, "--quiet"], env=consumer_env(PIP_INDEX_URL=default_index))
            else:
                run([uv, "venv", "--quiet", "--python", PYTHON, venv], env=uv_env)
                run([uv, *command[1:], "--quiet", "--python", venv / "bin/python"], env=uv_env)
            checked = run([venv / "bin/python", "-m", "mymodel", "validate"], env=consumer_env(), cwd=tmp_path)
            assert checked.returncode == 0, installer
            assert run([venv / "bin/python", "-c", "import mymodel; print(mymodel.__version__)"],
                       env=consumer_env(), cwd=tmp_path).stdout.strip() == FIRST
    finally:
        run([PYTHON, "-m", "pipeline", "index-stop"], cwd=REPO, env=public, check=False)


def fresh_index(repo: Path, env: dict[str, str], name: str) -> tuple[dict[str, str], str, str]:
    """A new, empty index on the module's devpi pair (restarted if a test stopped it), with its
    staging index (make devpi makes both for mymodel/dev): the environment that releases to it as make devpi prints, its primary URL and replica simple URL."""
    make(repo, "devpi", env)
    state = repo / "index/.state/devpi"
    pair = devpi_server.Devpi(state, int(env["DEVPI_PORT"]), int(env["DEVPI_REPLICA_PORT"]))
    devpi_server.create_index(pair, devpi_server.credentials(state), name + devpi_server.STAGING_SUFFIX)
    primary = devpi_server.create_index(pair, devpi_server.credentials(state), name)
    replica = f"{pair.replica}/mymodel/{name}/+simple/"
    return ({**env, "INDEX_URL": primary, "INDEX_READ_URL": replica,
             "INDEX_CREDENTIALS": str(state / "credentials.json")}, primary, replica)


def served_files(simple_url: str, project: str = "mymodel") -> list[tuple[str, str]]:
    """(file name, sha256) of every file of ``project`` the page lists, duplicates kept."""
    page = run(["curl", "-sf", "-H", "Accept: application/vnd.pypi.simple.v1+json", f"{simple_url}{project}/"]).stdout
    return sorted((f["filename"], f["hashes"]["sha256"]) for f in json.loads(page)["files"])


def start_stalled_release(clone: Path, env: dict[str, str], fault: str) -> subprocess.Popen:
    """make release that stops (SIGSTOP) once it found its version free, before its first upload."""
    process = subprocess.Popen(["make", "--no-print-directory", "-C", str(clone), "release", f"VENV={VENV}"],
                               env={**env, "RELEASE_FAULT": fault}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not any(state == "T" for state in process_states(process.pid)):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    return process


def process_states(group: int) -> list[str]:
    """The states (R, S, T for stopped, ...) of the processes in a process group."""
    states = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:
            states.append(fields[0])
    return states


def test_clones_at_one_commit_racing_on_devpi_never_publish_a_version_twice(devpi, tmp_path):
    # devpi answers a byte-identical re-upload with HTTP 200, not 409: each loser must see it did not upload it.
    repo, env, _ = devpi
    release_env, primary, replica = fresh_index(repo, env, "race")
    winner, loser, failing_loser = (copy_repo(tmp_path / name) for name in ("winner", "loser", "failing"))
    stalled = []
    try:
        # Both losers found 1.1.1 free; then the winner publishes it; then they upload the same bytes.
        stalled = [start_stalled_release(loser, release_env, "before-upload:sigstop"),
                   start_stalled_release(failing_loser, release_env, "before-upload:sigstop,after-first-upload")]
        won = make(winner, "release", release_env).stdout
        for process in stalled:
            os.killpg(process.pid, signal.SIGCONT)
        lost = [subprocess.CompletedProcess(p.args, 0, *p.communicate(timeout=300)) for p in stalled]
        for process, result in zip(stalled, lost):
            result.returncode = process.returncode
    finally:
        for process in stalled:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert re.search(r"released mymodel (\S+)", won).group(1) == FIRST
    for result in lost:
        assert_clean_error(result, f"another release published {FIRST} first: the index already held "
                                   f"mymodel-{FIRST}.tar.gz", "run make release again",
                           f"nothing of this run's {FIRST} is on the index")  # its intent marked the sdist refused
    winners_files = sorted((path.name, hashlib.sha256(path.read_bytes()).hexdigest())
                           for path in (winner / "dist").glob(f"mymodel-{FIRST}*"))
    assert len(winners_files) == 2
    assert served_files(primary + "+simple/") == served_files(replica) == winners_files
    assert "DELETE /mymodel/race/" not in (repo / "index/.state/devpi/primary.log").read_text()
    assert (winner / f"releases/mymodel-{FIRST}.txt").is_file()
    for clone in (loser, failing_loser):
        assert not (clone / f"releases/mymodel-{FIRST}.txt").exists()
        assert FIRST not in (clone / "src/mymodel/version.py").read_text()
        assert not list((clone / "dist").glob(".partial-*"))


def test_verify_lock_versions_diff_promote_and_the_gate_against_devpi(devpi, tmp_path):
    repo, env, _ = devpi
    release_env, primary, replica = fresh_index(repo, env, "targets")
    clone = copy_repo(tmp_path / "clone")
    make(clone, "release", release_env)
    edit_config(clone, "seed = 0", "seed = 2")
    second = make(clone, "release", release_env).stdout
    # the gate scored the wheel it downloaded from devpi on the rows both splits held out
    assert f"accuracy against {FIRST}:" in second and "rows both splits held out" in second
    assert f"released mymodel {SECOND}" in second

    worse = make(clone, "release", {**release_env, "DATA_FILE": str(worse_titanic(tmp_path / "worse.csv"))},
                 check=False)
    assert_clean_error(worse, f"accuracy dropped by more than 0.01 against {SECOND}", "FORCE=1")
    assert served_versions(primary + "+simple/") == {FIRST, SECOND}

    assert "reproducible: the rebuilt wheel is byte-identical" in make(clone, "verify", release_env,
                                                                       f"VERSION={SECOND}").stdout

    lock = make(clone, "lock", release_env, f"VERSION={SECOND}").stdout
    assert f"--index-url {replica} " in lock
    served = [(name, digest) for name, digest in served_files(replica) if version_of(name) == SECOND]
    assert sorted(re.findall(r"--hash=sha256:([0-9a-f]{64})", lock)) == sorted(digest for _, digest in served)
    (tmp_path / "lock.txt").write_text(lock)
    run([PYTHON, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--target", tmp_path / "site", "--no-deps",
         "--require-hashes", "--index-url", replica, "-r", tmp_path / "lock.txt"], env=consumer_env())
    assert (tmp_path / f"site/mymodel-{SECOND}.dist-info").is_dir()

    listed = json.loads(make(clone, "versions", release_env, "FORMAT=json").stdout)
    assert [row["version"] for row in listed] == [SECOND, FIRST]
    assert listed[0]["bump"]["kind"] == "logic" and listed[0]["bump"]["reasons"][0] == "split seed 0 -> 2"
    assert listed[1]["bump"]["reasons"] == ["first release of this clone"]

    diff = make(clone, "diff", release_env, f"A={FIRST}", f"B={SECOND}").stdout
    assert f"mymodel {FIRST} -> {SECOND}" in diff and "required bump: patch (logic)" in diff
    assert "split seed 0 -> 2" in diff

    # a channel is the index mymodel/prod (make devpi made it), read from the replica; a rollback
    # leaves the older version its only one
    channel = replica.replace("/targets/", "/prod/")
    # each release published its mymodel-onnx twin too: the promotion pushes it with the model package
    assert {version_of(name) for name, _ in served_files(replica, "mymodel-onnx")} == {FIRST, SECOND}
    for version in (FIRST, SECOND, FIRST):
        promoted = make(clone, "promote", release_env, f"VERSION={version}", "CHANNEL=prod").stdout
        assert f"promoted mymodel {version} to prod" in promoted
        assert promoted.index(f"read back {version} from {channel}") < promoted.index(f"pip install --index-url {channel}")
        assert {version_of(name) for name, _ in served_files(channel)} == {version}
        assert {version_of(name) for name, _ in served_files(channel, "mymodel-onnx")} == {version}
        # the project venv holds mymodel's dependencies; the replica serves the channel
        resolved = run([PYTHON, "-m", "pip", "install", "--dry-run", "--no-cache-dir", "--index-url", channel,
                        "mymodel"], env=consumer_env()).stdout
        assert f"Would install mymodel-{version}" in resolved
    # devpi keeps no history: make promote carries it in the channel index's record of the served version
    table = make(clone, "channels", release_env).stdout
    rows = [line.split() for line in table.splitlines() if line.startswith("prod ")]
    assert [(row[1], row[2]) for row in rows] == [("1", FIRST), ("2", SECOND), ("3", FIRST)], table
    # who: the credential's user; built from: the commit each version's wheel records (the seed edit is HEAD)
    built_from = {FIRST: run(["git", "rev-parse", "HEAD~1"], cwd=clone).stdout.strip(),
                  SECOND: run(["git", "rev-parse", "HEAD"], cwd=clone).stdout.strip()}
    assert all(row[4] == "mymodel" and row[5] == built_from[row[2]] for row in rows), table
    assert f"prod: pip install --index-url {channel} mymodel" in table
    assert_clean_error(make(clone, "promote", release_env, f"VERSION={FIRST}", "CHANNEL=canary", check=False),
                       "has no channel index mymodel/canary", "make devpi-channel CHANNEL=canary")
    assert_clean_error(make(clone, "promote", release_env, f"VERSION={FIRST}", "CHANNEL=targets", check=False),
                       "CHANNEL=targets is the release index mymodel/targets itself")
    assert_clean_error(make(repo, "devpi-channel", env, "CHANNEL=dev", check=False), "CHANNEL='dev' is no channel name")
    assert "devpi channel index" in make(repo, "devpi-channel", env, "CHANNEL=canary").stdout
    assert "read back" in make(clone, "promote", release_env, f"VERSION={SECOND}", "CHANNEL=canary").stdout
    assert {version_of(name) for name, _ in served_files(replica.replace("/targets/", "/canary/"))} == {SECOND}

    # prod's wheel replaced behind make promote's back (the owner may upload to the channel index): devpi serves
    # it, so every reader of the channel fails closed against the sha256 the promotion pinned
    creds = json.loads((repo / "index/.state/devpi/credentials.json").read_text())
    replace_served_file(primary.replace("/targets/", "/prod/"), clone / f"dist/mymodel-{FIRST}-py3-none-any.whl",
                        creds, tmp_path)
    replaced = f"serves mymodel-{FIRST}-py3-none-any.whl with sha256 "
    assert_clean_error(make(clone, "channels", release_env, check=False), f"channel prod (", replaced,
                       f"not what promotion 3 (mymodel {FIRST}) pinned: nobody promoted these bytes")
    assert_clean_error(make(clone, "consumer", release_env, "CLIENT=pip", "CHANNEL=prod", check=False), replaced)
    assert_clean_error(make(clone, "promote", release_env, f"VERSION={FIRST}", "CHANNEL=prod", check=False),
                       f"the channel index mymodel/prod already holds mymodel {FIRST} with other files or bytes")
    # promoting another version deletes the replaced one: the channel serves pinned bytes again
    make(clone, "promote", release_env, f"VERSION={SECOND}", "CHANNEL=prod")
    assert [line.split()[1:3] for line in make(clone, "channels", release_env).stdout.splitlines()
            if line.startswith("prod ")][-1] == ["4", SECOND]
