"""Processes the benchmark starts (always stopped), the two servers, and timed HTTP requests."""

from __future__ import annotations

import base64
import http.client
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.package.package_name import PACKAGE as PROJECT

HOST = "127.0.0.1"  # every server and request stays on loopback
REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HTTP_TIMEOUT = 300.0


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def proc_status_mb(pid: int, field: str) -> float | None:
    """A memory figure of a running process from /proc/<pid>/status (``VmRSS``, ``VmHWM``) in MB; None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def clean_env(**extra: str) -> dict[str, str]:
    """No pip/uv configuration, no virtualenv, no PYTHONPATH, no INDEX_* from the caller."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHON", "INDEX_"))}
    env.update(PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never", UV_LINK_MODE="copy")
    env.update(extra)
    return env


class Processes:
    """Every long-running process started here, each in its own session; stop_all() ends them all."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen] = []

    def start(self, command: list[str], log: Path, **kwargs) -> subprocess.Popen:
        with open(log, "ab") as handle:
            process = subprocess.Popen([str(c) for c in command], stdout=handle, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)  # its own process group (start_new_session)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        if process in self._running:
            self._running.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self._running)):
            try:
                self.stop(process)
            except Exception as exc:  # keep stopping the others
                print(f"warning: could not stop pid {process.pid}: {exc}", file=sys.stderr)


@dataclass
class Server:
    kind: str  # "stock" or "ours"
    port: int
    root: Path
    auth: str  # "update" or "read"
    process: subprocess.Popen | None = None
    log: Path | None = None
    software: str = ""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def simple_url(self) -> str:
        return f"{self.url}simple/"


def start_server(processes: Processes, kind: str, root: Path, htpasswd: Path, auth: str, logs: Path,
                 timeout: float = 60.0, extra_env: dict[str, str] | None = None, state: Path | None = None) -> Server:
    """``state``: ours keeps its records (yanks, versions, channels) and digests there; without one it has none."""
    server = Server(kind, free_port(), root, auth)
    server.log = logs / f"{kind}-{auth}-{root.name}-{server.port}.log"
    if kind == "stock":
        actions = {"update": "update", "read": "update,download,list"}[auth]
        command = [VENV_BIN / "pypi-server", "run", "-p", str(server.port), "-i", HOST, "--backend", "simple-dir",
                   "--disable-fallback", "-P", htpasswd, "-a", actions, "--server", "auto", root]
        server.process = processes.start(command, server.log, env=clean_env())
    else:
        command = [sys.executable, "-m", "index.server", "--host", HOST, "--port", str(server.port),
                   "--root", root, "--htpasswd", htpasswd, "--auth", auth, "--no-fallback", "--package", PROJECT]
        if state is not None:
            command += ["--digest-cache", state / "digests.json"]
        server.process = processes.start(command, server.log, cwd=REPO,
                                         env=clean_env(PYTHONPATH=str(REPO), **(extra_env or {})))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            health = request(server.url + "health", timeout=2.0)
            if health.status == 200:
                server.software = health.server
                return server
        except OSError:
            pass
        time.sleep(0.1)
    tail = server.log.read_text(errors="replace").strip().splitlines()[-5:]
    processes.stop(server.process)
    raise BenchError(f"{kind} server did not answer /health on port {server.port} within {timeout:.0f} s: "
                     + " | ".join(tail))


@dataclass
class Response:
    status: int
    seconds: float
    body: bytes
    server: str = ""  # the Server header: which WSGI server answered
    first_byte: float = 0.0  # until the status line and headers were read: the server's own time


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def request(url: str, authorization: str | None = None, timeout: float = HTTP_TIMEOUT) -> Response:
    """One GET on a fresh connection, timed until the headers are read and until the whole body is."""
    assert url.startswith(f"http://{HOST}:"), url
    rest = url[len("http://"):]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    headers = {"Authorization": authorization} if authorization else {}
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("GET", "/" + path, headers=headers)
        response = connection.getresponse()
        first_byte = time.perf_counter() - started
        body = response.read()
    finally:
        connection.close()
    return Response(response.status, time.perf_counter() - started, body, response.getheader("Server", ""), first_byte)


@dataclass
class Latency:
    first: float  # the first request after start-up
    samples: list[float] = field(default_factory=list)  # the following ones
    first_bytes: list[float] = field(default_factory=list)  # the same requests, until their headers
    page_bytes: int = 0
    requested: int = 0
    stopped_by_budget: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]

    @property
    def first_byte_median(self) -> float:
        return statistics.median(self.first_bytes)

    def as_dict(self) -> dict:
        return {"first_ms": self.first * 1e3, "median_ms": self.median * 1e3, "p95_ms": self.p95 * 1e3,
                "first_byte_median_ms": self.first_byte_median * 1e3, "page_bytes": self.page_bytes,
                "n": len(self.samples), "requested": self.requested, "stopped_by_budget": self.stopped_by_budget}


def _get(url: str, authorization: str | None, expect_links: int | None) -> Response:
    response = request(url, authorization)
    if response.status != 200:
        raise BenchError(f"GET {url} answered {response.status}")
    if expect_links is not None and response.body.count(b"<a ") != expect_links:
        raise BenchError(f"GET {url}: {response.body.count(b'<a ')} links, expected {expect_links}")
    return response


def measure(targets: list[tuple[str, str | None]], count: int, budget: float,
            expect_links: int | None = None) -> list[Latency]:
    """For each (url, authorization): the first request; then up to ``count`` rounds, one request to each
    target per round (interleaved, so background load falls on all alike), within ``budget`` seconds
    (at least 2 rounds)."""
    results = []
    for url, auth in targets:
        first = _get(url, auth, expect_links)
        results.append(Latency(first=first.seconds, page_bytes=len(first.body), requested=count))
    deadline = time.monotonic() + budget
    for i in range(count):
        if i >= 2 and time.monotonic() > deadline:
            for result in results:
                result.stopped_by_budget = True
            break
        for (url, auth), result in zip(targets, results):
            response = _get(url, auth, expect_links)
            result.samples.append(response.seconds)
            result.first_bytes.append(response.first_byte)
    return results


def timed_run(command: list, env: dict, cwd: Path | None = None, timeout: float = 300.0,
              expect: str | None = None) -> float:
    """Wall time of one command that must succeed (and print ``expect`` if given)."""
    started = time.perf_counter()
    result = subprocess.run([str(c) for c in command], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or (expect is not None and expect not in result.stdout + result.stderr):
        raise BenchError(f"{' '.join(map(str, command))} exited {result.returncode}"
                         f"{'' if expect is None else f' (expected {expect!r})'}:\n"
                         f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed
