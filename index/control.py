"""Start, stop and inspect the local index process (``make index``, ``index-stop``, ``index-status``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from index import credentials
from index.errors import IndexServerError
from index.settings import (ABANDONED_AFTER, CHANNEL_TIMEOUT, INDEX_HOST, INDEX_READER, INDEX_START_TIMEOUT,
                            INDEX_STATE_ROOT, INDEX_USER, PORT_FILE, REPO, IndexSettings, env, looks_like_devpi,
                            remembered_port)

PID_FILE = "server.json"
LOG_FILE = "server.log"
DIGEST_CACHE_FILE = "digests.json"


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    url: str
    packages_dir: Path | None
    auth: str | None

    def describe(self) -> str:
        if not self.running:
            return f"index: not running (would serve {self.url})"
        return f"index: running at {self.url} (pid {self.pid}, auth={self.auth}, serving {self.packages_dir})"


def running_here() -> list[Status]:
    """The indexes this clone started that still run (each state folder INDEX_STATE_ROOT/port-<N>), by port."""
    found = []
    for state in sorted(INDEX_STATE_ROOT.glob("port-*"), key=lambda folder: folder.name):
        port = state.name.removeprefix("port-")
        if not (port.isascii() and port.isdigit()):
            continue
        here = IndexSettings(INDEX_HOST, int(port), Path(), state.resolve(), None, None)
        if (current := status(here)).running:
            found.append(current)
    return sorted(found, key=lambda s: s.url)


def remember(settings: IndexSettings) -> bool:
    """Make the port of an index started with this clone's own state folder the one every target uses
    while INDEX_PORT is unset (PORT_FILE); True when that changed it."""
    if settings.external_url or settings.state_dir != (INDEX_STATE_ROOT / f"port-{settings.port}").resolve():
        return False  # INDEX_STATE elsewhere (a test's, a second index's): not this clone's default
    if remembered_port() == str(settings.port):
        return False
    INDEX_STATE_ROOT.mkdir(parents=True, exist_ok=True)
    temporary = PORT_FILE.with_name(f".{PORT_FILE.name}.{os.getpid()}")
    temporary.write_text(f"{settings.port}\n", encoding="utf-8")
    os.replace(temporary, PORT_FILE)
    return True


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Does the index at ``url`` answer? devpi-server has no /health: its /+api answers instead."""
    probe = url.rstrip("/") + "/health"
    if looks_like_devpi(url):
        parts = urllib.parse.urlsplit(url)
        probe = f"{parts.scheme}://{parts.netloc}/+api"
    try:
        with urllib.request.urlopen(probe, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _recorded(settings: IndexSettings) -> dict | None:
    """The record of our index process, if that process still runs.

    After a crash or a reboot the recorded PID may belong to anything: only a
    process started at the recorded time, running index.server on the recorded
    port and leading its own process group (the one stop() signals) is ours.
    """
    try:
        record = json.loads((settings.state_dir / PID_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(record, dict) or not is_ours(record, b"index.server"):
        return None
    return record


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat from the 3rd (the state) on, which follow the ")" of the name; None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """When the process started, in clock ticks after boot (field 22 of /proc/<pid>/stat); None if gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def is_ours(record: dict, program: bytes) -> bool:
    """Is the recorded process still the one we started: ``program`` on the recorded port?"""
    pid, port = record.get("pid"), record.get("port")
    if type(pid) is not int or pid <= 0:
        return False
    started = start_time(pid)
    # Records written before the start time was kept have none: the command line must do.
    if started is None or record.get("started", started) != started:
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        leads_its_group = os.getpgid(pid) == pid
    except OSError:
        return False
    listens_on_port = any(flag == b"--port" and value == str(port).encode() for flag, value in zip(argv, argv[1:]))
    return leads_its_group and any(program in arg for arg in argv) and listens_on_port


def status(settings: IndexSettings) -> Status:
    record = _recorded(settings)
    if record and record.get("port") == settings.port and healthy(settings.url):
        return Status(True, record["pid"], settings.url, Path(record["packages_dir"]), record.get("auth"))
    return Status(False, None, settings.url, None, None)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # As the server will: connections of a stopped index in TIME_WAIT do not block the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def conflicts(running: Status, settings: IndexSettings) -> list[str]:
    """The settings asked for that the running index does not have, each named as a user sets it."""
    differ = []
    if settings.auth is not None and running.auth != settings.auth:
        differ.append(f"INDEX_AUTH={running.auth}, not the INDEX_AUTH={settings.auth} asked for "
                      "(leave INDEX_AUTH unset to use the index as it runs)")
    if running.packages_dir != settings.packages_dir:
        differ.append(f"INDEX_DIR={running.packages_dir}, not the INDEX_DIR={settings.packages_dir} asked for")
    return differ


def start(settings: IndexSettings) -> Status:
    """Start the index in the background unless it already runs; wait for /health.

    A running index is used as it runs (INDEX_AUTH unset follows its mode); a setting
    given that it does not have is an error naming that setting."""
    current = status(settings)
    if current.running:
        differ = conflicts(current, settings)
        if differ:
            raise IndexServerError(
                f"the index on port {settings.port} runs with {'; and '.join(differ)}; run make index-stop first "
                f"to restart it with your settings, or use another INDEX_PORT")
        remember(settings)
        return current
    if not port_free(settings.host, settings.port):
        raise IndexServerError(
            f"port {settings.port} on {settings.host} is taken by another program; "
            f"stop it or choose another port, e.g. make release INDEX_PORT={settings.port + 1}")
    auth = settings.auth or "update"
    idle_seconds, abandoned = channel_timeout(), abandoned_after()
    credentials.ensure(settings.state_dir, INDEX_USER, INDEX_READER)
    settings.packages_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "index.server", "--host", settings.host, "--port", str(settings.port),
               "--root", str(settings.packages_dir), "--htpasswd", str(settings.state_dir / credentials.HTPASSWD_FILE),
               "--auth", auth, "--digest-cache", str(settings.state_dir / DIGEST_CACHE_FILE)]
    command += ["--package", settings.package]
    if env("INDEX_FALLBACK") == "off":
        command.append("--no-fallback")
    command += ["--channel-timeout", str(idle_seconds), "--abandoned-after", str(abandoned)]
    log = open(settings.state_dir / LOG_FILE, "ab")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    log.close()
    record = {"pid": process.pid, "started": start_time(process.pid), "port": settings.port,
              "packages_dir": str(settings.packages_dir), "auth": auth,
              "package": settings.package}
    (settings.state_dir / PID_FILE).write_text(json.dumps(record))
    deadline = time.monotonic() + INDEX_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if healthy(settings.url, timeout=1.0):
            remember(settings)
            return Status(True, process.pid, settings.url, settings.packages_dir, auth)
        time.sleep(0.1)
    process.kill()
    (settings.state_dir / PID_FILE).unlink(missing_ok=True)
    tail = (settings.state_dir / LOG_FILE).read_text(errors="replace").strip().splitlines()[-3:]
    raise IndexServerError(f"the index did not come up on {settings.url} within {INDEX_START_TIMEOUT:.0f} s "
                            f"(log {settings.state_dir / LOG_FILE}: {' | '.join(tail)}); check the log and retry")


def _exited(pid: int) -> bool:
    """Gone, or a zombie: it exited, and only the process that adopted it (an init, which in a
    container may reap late or never) has yet to collect its status. A zombie leader whose other
    threads still exit has not: they share its open files (the port, the state folder's records)."""
    fields = _stat_fields(pid)
    if fields is None:
        return True
    if fields[0] not in ("Z", "X"):
        return False
    try:
        return all(task == str(pid) for task in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return True  # reaped meanwhile


def channel_timeout() -> int:
    """INDEX_CHANNEL_TIMEOUT: after how many idle seconds the index closes a connection."""
    value = env("INDEX_CHANNEL_TIMEOUT", str(CHANNEL_TIMEOUT))
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise IndexServerError(f"INDEX_CHANNEL_TIMEOUT={value!r} is not a whole number of seconds; "
                               f"set it to one, e.g. INDEX_CHANNEL_TIMEOUT={CHANNEL_TIMEOUT} (the default)")
    return int(value)


def abandoned_after() -> float:
    """INDEX_ABANDONED_AFTER: seconds after its last upload that a version nobody sealed is abandoned."""
    value = env("INDEX_ABANDONED_AFTER", str(ABANDONED_AFTER))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise IndexServerError(f"INDEX_ABANDONED_AFTER={value!r} is not a number of seconds; set it to one, "
                               f"e.g. INDEX_ABANDONED_AFTER={ABANDONED_AFTER} (the default)")
    return seconds


def stop(settings: IndexSettings) -> bool:
    """Stop our index process; True if one was running."""
    record = _recorded(settings)
    (settings.state_dir / PID_FILE).unlink(missing_ok=True)
    return record is not None and terminate(record["pid"])


def terminate(pid: int) -> bool:
    """SIGTERM the process group ``pid`` leads, SIGKILL it after 10 s; False if it was gone."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        # Our own child (tests): reap it so it does not linger as a zombie.
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True
        except ChildProcessError:
            pass
        if _exited(pid):
            return True
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
