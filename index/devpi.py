"""A local devpi-server primary and one replica on loopback (``make devpi``, ``make devpi-stop``).

For trying the pipeline against a replicated index: state under ``index/.state/devpi/``,
generated owner-only credentials, only root may create users and indexes, and one
non-volatile index ``mymodel/dev`` with no bases, so nothing public can shadow ``mymodel``, and
its staging index ``mymodel/dev.staging``, where a release's files wait until its last one is there.

The embedded index's roles (index/access.py) mapped onto devpi (``DEVPI_TEAMS=churn,fraud``): the admin
is devpi's root; each team gets its own index ``<team>/dev`` (no bases) and two users, ``<team>``
(maintain) and ``<team>-ci`` (upload), both in its ``acl_upload``: the only write permission devpi
has, which also deletes (devpi cannot give a CI upload without removal). Reads stay open (devpi has
no read ACL without a plugin such as devpi-lockdown). A name is a team's by living in its index:
another team's index may hold the same name, so consumers name the team's index URL.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from index import control
from index.channels import valid_channel
from index.credentials import write_private
from index.errors import IndexServerError
from index.settings import (INDEX_HOST, INDEX_START_TIMEOUT, INDEX_STATE_ROOT, INDEX_USER, PACKAGE, env,
                            install_from_replica)

DEVPI_PORT, DEVPI_REPLICA_PORT = 3141, 3142
INDEX_NAME = "dev"
# <user>/<index>.staging: where a release's files wait until every one is there, then pushed to <user>/<index>
# at once (pipeline/indexes/devpi.py); a dot, so no channel name (index/channels.py) is ever a staging index.
STAGING_SUFFIX = ".staging"
CHANNELS = ("prod",)  # channel indexes make devpi creates; make devpi-channel CHANNEL= adds one
CREDENTIALS_FILE = "credentials.json"
SECRET_FILE = "secret"
# Fast key derivation: start-up in < 1 s and ~70 MB instead of 5-12 s and ~600 MB. The
# secret only signs login tokens of this loopback index; primary and replica must agree.
ARGON2 = ("--argon2-memory-cost", "8192", "--argon2-time-cost", "1", "--argon2-parallelism", "1")
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Devpi:
    state: Path
    primary_port: int
    replica_port: int

    @property
    def primary(self) -> str:
        return f"http://{INDEX_HOST}:{self.primary_port}"

    @property
    def replica(self) -> str:
        return f"http://{INDEX_HOST}:{self.replica_port}"

    @property
    def index_url(self) -> str:
        return f"{self.primary}/{INDEX_USER}/{INDEX_NAME}/"

    @property
    def replica_simple_url(self) -> str:
        return f"{self.replica}/{INDEX_USER}/{INDEX_NAME}/+simple/"


def default_state() -> Path:
    return (INDEX_STATE_ROOT / "devpi").resolve()


def release_command(devpi: Devpi) -> str:
    """``make release INDEX=devpi`` with the settings that differ from its defaults."""
    given = [f"DEVPI_PORT={devpi.primary_port}" if devpi.primary_port != DEVPI_PORT else "",
             f"DEVPI_REPLICA_PORT={devpi.replica_port}" if devpi.replica_port != DEVPI_REPLICA_PORT else "",
             f"DEVPI_STATE={devpi.state}" if devpi.state != default_state() else ""]
    return " ".join(["make release INDEX=devpi", *filter(None, given)])


def settings() -> Devpi:
    ports = []
    for name, default in (("DEVPI_PORT", DEVPI_PORT), ("DEVPI_REPLICA_PORT", DEVPI_REPLICA_PORT)):
        raw = env(name, str(default))
        if not (raw or "").isdigit() or not 0 < int(raw) < 65536:
            raise IndexServerError(f"{name}={raw!r} is not a port number; use e.g. {name}={default}")
        ports.append(int(raw))
    if ports[0] == ports[1]:
        raise IndexServerError(f"DEVPI_PORT and DEVPI_REPLICA_PORT are both {ports[0]}; give the replica another port")
    return Devpi(Path(env("DEVPI_STATE")).resolve() if env("DEVPI_STATE") else default_state(), *ports)


def credentials(state: Path) -> dict[str, str]:
    """root's and the index owner's passwords, generated once, owner-only."""
    path = state / CREDENTIALS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        pass
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    creds = {"root_password": secrets.token_urlsafe(24), "username": INDEX_USER, "password": secrets.token_urlsafe(24)}
    write_private(path, json.dumps(creds).encode())
    return creds


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-2:])
        raise IndexServerError(f"{what} failed ({tail}); remove {Path(command[command.index('--serverdir') + 1])} "
                               "and run make devpi again")


def _serve(name: str, server_dir: Path, port: int, devpi: Devpi, extra: list[str]) -> None:
    record_file = devpi.state / f"{name}.json"
    try:
        record = json.loads(record_file.read_text())
    except (FileNotFoundError, ValueError):
        record = None
    url = f"http://{INDEX_HOST}:{port}"
    if record and record.get("port") == port and control.is_ours(record, b"devpi-server") and _answers(url):
        return
    if not control.port_free(INDEX_HOST, port):
        raise IndexServerError(f"port {port} on {INDEX_HOST} is taken by another program; stop it or choose "
                               f"another, e.g. make devpi {'DEVPI_PORT' if name == 'primary' else 'DEVPI_REPLICA_PORT'}={port + 2}")
    log_path = devpi.state / f"{name}.log"
    command = [str(BIN / "devpi-server"), "--serverdir", str(server_dir), "--host", INDEX_HOST, "--port", str(port),
               "--secretfile", str(devpi.state / SECRET_FILE), *ARGON2, *extra]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    record_file.write_text(json.dumps({"pid": process.pid, "started": control.start_time(process.pid), "port": port}))
    deadline = time.monotonic() + INDEX_START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if _answers(url):
            return
        time.sleep(0.1)
    control.terminate(process.pid)
    record_file.unlink(missing_ok=True)
    tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-2:])
    raise IndexServerError(f"devpi {name} did not come up on {url} within {INDEX_START_TIMEOUT:.0f} s "
                           f"({log_path}: {tail}); check the log and retry")


def _answers(url: str, path: str = "/+api") -> bool:
    try:
        with urllib.request.urlopen(url + path, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _call(method: str, url: str, body: dict | None = None, auth: str | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    if auth:
        request.add_header("X-Devpi-Auth", auth)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise IndexServerError(f"devpi answered HTTP {exc.code} to {method} {url}; see the primary's log") from None


def login(server: str, user: str, password: str) -> str:
    """The X-Devpi-Auth header value for ``user``: base64 of ``user:<token from POST /+login>``."""
    token = _call("POST", f"{server}/+login", {"user": user, "password": password})["result"]["password"]
    return base64.b64encode(f"{user}:{token}".encode()).decode()


def _ensure_index(devpi: Devpi, creds: dict[str, str]) -> None:
    for name in (INDEX_NAME, INDEX_NAME + STAGING_SUFFIX, *CHANNELS):
        if not _answers(devpi.primary, f"/{INDEX_USER}/{name}/+simple/"):
            create_index(devpi, creds, name)


def create_channel(devpi: Devpi, channel: str | None) -> str:
    """``make devpi-channel CHANNEL=<name>``: the channel index ``<user>/<name>`` that ``make promote``
    pushes to (only root creates indexes here, and the release job holds the owner's credentials)."""
    if not channel or not valid_channel(channel) or channel == INDEX_NAME:
        raise IndexServerError(f"CHANNEL={channel or ''!r} is no channel name: lowercase letters, digits and hyphens, "
                               f"not {INDEX_NAME} (the release index); e.g. make devpi-channel CHANNEL=staging")
    if not _answers(devpi.primary):
        raise IndexServerError(f"devpi is not running at {devpi.primary}; start it with make devpi")
    if _answers(devpi.primary, f"/{INDEX_USER}/{channel}/+simple/"):
        return f"{devpi.primary}/{INDEX_USER}/{channel}/"
    return create_index(devpi, credentials(devpi.state), channel)


def create_index(devpi: Devpi, creds: dict[str, str], name: str) -> str:
    """A non-volatile index ``<user>/<name>`` with no bases, created by root (with its user if
    needed); its URL."""
    root = login(devpi.primary, "root", creds["root_password"])
    if not _answers(devpi.primary, f"/{INDEX_USER}"):
        _call("PUT", f"{devpi.primary}/{INDEX_USER}", {"password": creds["password"], "email": ""}, root)
    url = f"{devpi.primary}/{INDEX_USER}/{name}/"
    _call("PUT", url.rstrip("/"), {"bases": [], "volatile": False, "type": "stage"}, root)
    return url


def teams(raw: str | None) -> list[str]:
    """DEVPI_TEAMS: team names, comma-separated.

    >>> teams("churn, fraud"), teams(None)
    (['churn', 'fraud'], [])
    """
    names = [name.strip() for name in (raw or "").split(",") if name.strip()]
    for name in names:
        if not valid_channel(name) or name in ("root", INDEX_USER):
            raise IndexServerError(f"DEVPI_TEAMS names {name[:40]!r}: a team is lowercase letters, digits and hyphens "
                                   f"(not root or {INDEX_USER}); e.g. DEVPI_TEAMS=churn,fraud")
    return names


def create_teams(devpi: Devpi, creds: dict[str, str], names: list[str]) -> dict[str, dict[str, str]]:
    """Each team's users (``<team>`` maintain, ``<team>-ci`` upload) and indexes ``<team>/dev`` and its
    staging index ``<team>/dev.staging`` with both in their acl_upload, made by root (an existing one is kept); their passwords, generated once, kept owner-only
    in credentials.json."""
    made = dict(creds.get("teams", {}))
    root = login(devpi.primary, "root", creds["root_password"])
    for team in names:
        users = made.setdefault(team, {})
        for user in (team, f"{team}-ci"):
            if user not in users:
                users[user] = secrets.token_urlsafe(24)
            if not _answers(devpi.primary, f"/{user}"):
                _call("PUT", f"{devpi.primary}/{user}", {"password": users[user], "email": ""}, root)
        for name in (INDEX_NAME, INDEX_NAME + STAGING_SUFFIX):  # its releases wait in the staging index
            if not _answers(devpi.primary, f"/{team}/{name}/+simple/"):  # made before: kept as it is
                _call("PUT", f"{devpi.primary}/{team}/{name}",
                      {"bases": [], "volatile": False, "type": "stage", "acl_upload": [team, f"{team}-ci"]}, root)
    write_private(devpi.state / CREDENTIALS_FILE, json.dumps({**creds, "teams": made}).encode())
    return made


def start(devpi: Devpi) -> None:
    creds = credentials(devpi.state)
    secret = devpi.state / SECRET_FILE
    if not secret.is_file():
        _run([str(BIN / "devpi-gen-secret"), "--secretfile", str(secret)], "devpi-gen-secret")
        secret.chmod(0o600)
    primary_dir, replica_dir = devpi.state / "primary", devpi.state / "replica"
    if not (primary_dir / ".serverversion").exists():
        # devpi-init reads DEVPISERVER_<OPTION> as the option's default. An environment is
        # readable by its owner only; a command line (--root-passwd) by every local user.
        _run([str(BIN / "devpi-init"), "--serverdir", str(primary_dir), "--role", "primary", "--no-root-pypi"],
             "devpi-init of the primary", env={"DEVPISERVER_ROOT_PASSWD": creds["root_password"]})
    _serve("primary", primary_dir, devpi.primary_port, devpi,
           ["--role", "primary", "--restrict-modify", "root"])
    _ensure_index(devpi, creds)
    if not (replica_dir / ".serverversion").exists():
        _run([str(BIN / "devpi-init"), "--serverdir", str(replica_dir), "--primary-url", devpi.primary],
             "devpi-init of the replica")
    _serve("replica", replica_dir, devpi.replica_port, devpi,
           ["--primary-url", devpi.primary, "--restrict-modify", "root"])
    deadline = time.monotonic() + INDEX_START_TIMEOUT
    while not _answers(devpi.replica, f"/{INDEX_USER}/{INDEX_NAME}/+simple/"):
        if time.monotonic() > deadline:
            raise IndexServerError(f"the devpi replica {devpi.replica} does not serve {INDEX_USER}/{INDEX_NAME} after "
                                   f"{INDEX_START_TIMEOUT:.0f} s; check {devpi.state}/replica.log")
        time.sleep(0.1)


def stop(devpi: Devpi) -> list[str]:
    """Stop the replica, then the primary; the names of those that were running."""
    stopped = []
    for name in ("replica", "primary"):
        record_file = devpi.state / f"{name}.json"
        try:
            record = json.loads(record_file.read_text())
        except (FileNotFoundError, ValueError):
            continue
        record_file.unlink()
        if isinstance(record, dict) and control.is_ours(record, b"devpi-server") and control.terminate(record["pid"]):
            stopped.append(name)
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m index.devpi", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "stop", "channel"))
    parser.add_argument("--package", default=PACKAGE, help="the model package to name in the install line")
    args = parser.parse_args(argv)
    try:
        devpi = settings()
        if args.command == "channel":
            url = create_channel(devpi, env("CHANNEL"))
            print(f"devpi channel index {url} (bases=[]): make promote INDEX=devpi CHANNEL={env('CHANNEL')} pushes to it")
            return 0
        if args.command == "stop":
            stopped = stop(devpi)
            print(f"devpi: stopped {' and '.join(stopped)}" if stopped else "devpi: was not running")
            return 0
        start(devpi)
        team_names = teams(env("DEVPI_TEAMS"))
        if team_names:
            create_teams(devpi, credentials(devpi.state), team_names)
    except IndexServerError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"devpi primary {devpi.primary} and replica {devpi.replica} (state {devpi.state}, credentials "
          f"{devpi.state / CREDENTIALS_FILE}, owner-only)\nrelease to it with:\n"
          f"  {release_command(devpi)}\n"
          f"or, from anywhere, with INDEX_USERNAME and INDEX_PASSWORD from that file:\n"
          f"  make release INDEX_URL={devpi.index_url} INDEX_READ_URL={devpi.replica_simple_url}\n"
          f"install from the replica (the dependencies from your default index):\n"
          + install_from_replica(devpi.replica_simple_url, f"{args.package}==<version>"))
    for team in team_names:
        print(f"team {team}: index {devpi.primary}/{team}/{INDEX_NAME}/, users {team} (maintain) and {team}-ci "
              f"(upload; devpi lets it remove too), passwords in {devpi.state / CREDENTIALS_FILE} under teams")
    return 0


if __name__ == "__main__":
    sys.exit(main())
