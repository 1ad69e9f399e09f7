"""A fleet deploy: many clients at once downloading one wheel, from our index and from nginx with ``sendfile``.

Each fleet is curl (C, no interpreter in the client's way) fetching the same file N times at once
(``--parallel --parallel-immediate``, at most 250 transfers per curl process), every transfer's status,
size and time written out. The same folder is served by our index (anonymous reads, then private reads
with the consumers' credential) and by Debian's nginx (``sendfile on``, installed here when missing, as
the browser tests install Chromium), each fleet run against all three in alternating order, round after
round, so background load falls on all alike. Reported per fleet: aggregate throughput (bytes over the
fleet's wall time), each client's completion time (p50, p99), failures (any transfer that is not a 200
with every byte), and our index's resident memory before and at its peak during the fleet.
"""

from __future__ import annotations

import math
import os
import pwd
import shutil
import statistics
import subprocess
import threading
from collections import Counter
import time
from pathlib import Path

from benchmarks.servers import (HOST, BenchError, Processes, clean_env, free_port, proc_status_mb, request,
                               start_server)

NGINX = "nginx"
INSTALL = ["apt-get", "install", "-y", "-qq", "nginx"]
PER_CURL = 250  # curl 7.88 runs at most 300 transfers in parallel per process
SECTION = "## A fleet deploy: many clients downloading one wheel at once"
KINDS = ("nginx", "ours", "ours-auth")
WRITE_OUT = r"%{http_code} %{size_download} %{time_total}\n"
NGINX_CONF = """\
user {user};
worker_processes auto;
worker_rlimit_nofile 8192;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen {host}:{port};
        location /packages/ {{ alias {root}/; }}
    }}
}}
"""


def parse_fleets(values: list[str]) -> list[tuple[int, float]]:
    """``["50x200", "1000x5"]`` -> [(50, 200.0), (1000, 5.0)]: clients x megabytes.

    >>> parse_fleets(["50x200", "3x0.5"])
    [(50, 200.0), (3, 0.5)]
    """
    fleets = []
    for value in values:
        clients, _, size = value.partition("x")
        if not clients.isdigit() or int(clients) < 1:
            raise ValueError(f"--fleet {value!r}: write CLIENTSxMB, e.g. 200x200")
        try:
            megabytes = float(size)
        except ValueError:
            megabytes = 0.0
        if not 0 < megabytes < math.inf:
            raise ValueError(f"--fleet {value!r}: write CLIENTSxMB, e.g. 200x200")
        fleets.append((int(clients), megabytes))
    return fleets


def nginx_binary() -> str:
    """Debian's nginx, installed with apt-get when missing (as root, like the browser tests' Chromium)."""
    found = shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(f"nginx is not installed and this user cannot install it; run as root: {' '.join(INSTALL)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], INSTALL):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise BenchError(f"installing nginx failed ({' '.join(command)}: {result.stderr.strip()[-500:]}); "
                             f"install it by hand: {' '.join(INSTALL)}")
    found = shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin")
    if not found:
        raise BenchError(f"apt-get installed nginx but no nginx binary is on PATH; check: {' '.join(INSTALL)}")
    return found


def start_nginx(processes: Processes, root: Path, folder: Path, logs: Path, timeout: float = 30.0) -> tuple[subprocess.Popen, int]:
    """nginx on a free loopback port serving ``root`` at /packages/ with sendfile; (process, port)."""
    folder.mkdir(parents=True)
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=pwd.getpwuid(os.getuid()).pw_name, folder=folder, host=HOST, port=port,
                                      root=root))
    process = processes.start([nginx_binary(), "-p", folder, "-c", conf, "-g", "daemon off;"], logs / "nginx.log")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            request(f"http://{HOST}:{port}/", timeout=2.0)
            return process, port
        except OSError:
            time.sleep(0.1)
    processes.stop(process)
    tail = (folder / "error.log").read_text(errors="replace").strip().splitlines()[-3:] if (folder / "error.log").exists() else []
    raise BenchError(f"nginx did not answer on port {port} within {timeout:.0f} s: {' | '.join(tail)}")


def make_wheels(root: Path, fleets: list[tuple[int, float]]) -> dict[float, Path]:
    """One file of random bytes per size, named as a wheel (curl does not unpack it)."""
    root.mkdir(parents=True)
    wheels = {}
    for _, megabytes in fleets:
        if megabytes in wheels:
            continue
        path = root / f"fleetwheel-{len(wheels) + 1}.0-py3-none-any.whl"
        left = int(megabytes * 2**20)
        with path.open("wb") as out:
            while left:
                block = os.urandom(min(left, 4 * 2**20))
                out.write(block)
                left -= len(block)
        wheels[megabytes] = path
    os.sync()
    return wheels


class PeakMemory:
    """The resident memory of a process, sampled every few ms on a thread until stopped (MB)."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every = pid, every
        self.before = resident_mb(pid)
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, resident_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, resident_mb(self.pid))
        return self.peak


def resident_mb(pid: int) -> float:
    return proc_status_mb(pid, "VmRSS") or 0.0


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def run_fleet(url: str, clients: int, size: int, folder: Path, processes: Processes, credential: str | None = None,
              memory_of: int | None = None, timeout: float = 900.0) -> dict:
    """``clients`` curl transfers of ``url`` at once; their throughput, completion times and failures."""
    folder.mkdir(parents=True)
    parts = [min(PER_CURL, clients - start) for start in range(0, clients, PER_CURL)]
    commands = []
    for i, count in enumerate(parts):
        config = folder / f"curl-{i}.conf"
        lines = [f'url = "{url}"\noutput = "/dev/null"\n' for _ in range(count)]
        if credential:
            lines.insert(0, f'user = "{credential}"\n')
        config.write_text("".join(lines))
        config.chmod(0o600)
        commands.append(["curl", "--no-progress-meter", "--stderr", folder / f"curl-{i}.err", "--parallel", "--parallel-immediate", "--parallel-max", str(count),
                         "--max-time", str(int(timeout)), "--write-out", WRITE_OUT, "--config", config])
    memory = PeakMemory(memory_of) if memory_of else None
    started = time.perf_counter()
    running = [processes.start(command, folder / f"curl-{i}.out", env=clean_env()) for i, command in enumerate(commands)]
    for process in running:
        try:
            process.wait(timeout=max(started + timeout + 30 - time.perf_counter(), 0.1))
        except subprocess.TimeoutExpired:
            pass
        processes.stop(process)
    wall = time.perf_counter() - started
    peak = memory.stop() if memory else None
    times, received, errors = [], 0, Counter()
    for i in range(len(commands)):
        for line in (folder / f"curl-{i}.err").read_text(errors="replace").splitlines():
            if line.startswith("curl: ("):
                errors[line[:80]] += 1  # curl's reason for a failed transfer, "curl: (7) Failed to connect ..."
        for line in (folder / f"curl-{i}.out").read_text(errors="replace").splitlines():
            fields = line.split()
            if len(fields) != 3 or not fields[0].isdigit():
                continue
            code, got, seconds = int(fields[0]), int(float(fields[1])), float(fields[2])
            received += got
            if code == 200 and got == size:
                times.append(seconds)
            elif code != 0:
                errors[f"HTTP {code}, {got} bytes"] += 1
    failed = clients - len(times)  # a wrong status or size, or no line at all (curl's own error instead)
    shutil.rmtree(folder, ignore_errors=True)
    result = {"clients": clients, "bytes": size, "wall_s": wall, "throughput_mb_s": received / wall / 2**20,
              "failed": failed, "errors": dict(errors), "p50_s": percentile(times, 0.5) if times else None,
              "p99_s": percentile(times, 0.99) if times else None}
    if memory:
        result.update(rss_before_mb=memory.before, rss_peak_mb=peak)
    return result


def fleet_steps(work: Path, processes: Processes, htpasswd: Path, user: str, password: str, logs: Path,
                fleets: list[tuple[int, float]], rounds: int, say) -> dict:
    """Every fleet against nginx, our index and our index with private reads, ``rounds`` times each."""
    base = work / "fleet"
    say(f"==> fleet deploy: {', '.join(f'{n} clients x {mb:g} MB' for n, mb in fleets)}; nginx (sendfile) and our "
        f"index, anonymous and private reads, {rounds} round(s)")
    wheels = make_wheels(base / "packages", fleets)
    nginx, nginx_port = start_nginx(processes, base / "packages", base / "nginx", logs)
    servers = []
    try:
        servers = [start_server(processes, "ours", base / "packages", htpasswd, auth, logs) for auth in ("update", "read")]
        ours, private = servers
        credential = f"{user}:{password}"
        smallest = wheels[min(wheels)].name
        for server in (ours, private):
            probe = request(server.url + "packages/" + smallest)
            expected = 401 if server is private else 200
            if probe.status != expected:
                raise BenchError(f"our index (auth={server.auth}) answered {probe.status} to an anonymous download, "
                                 f"expected {expected}")
        urls = {"nginx": f"http://{HOST}:{nginx_port}/packages/", "ours": ours.url + "packages/",
                "ours-auth": private.url + "packages/"}
        pids = {"nginx": None, "ours": ours.process.pid, "ours-auth": private.process.pid}
        results = []
        for clients, megabytes in fleets:
            wheel = wheels[megabytes]
            size = wheel.stat().st_size
            runs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
            for round_ in range(rounds):
                order = KINDS if round_ % 2 == 0 else tuple(reversed(KINDS))
                for kind in order:
                    runs[kind].append(run_fleet(urls[kind] + wheel.name, clients, size, base / f"run-{kind}",
                                                processes, credential if kind == "ours-auth" else None, pids[kind]))
            entry = {"clients": clients, "megabytes": megabytes, "rounds": rounds,
                     **{kind: summary(runs[kind]) for kind in KINDS}}
            for kind in ("ours", "ours-auth"):
                entry[kind]["throughput_ratio"] = entry[kind]["throughput_mb_s"] / entry["nginx"]["throughput_mb_s"]
            results.append(entry)
            say(f"    {clients} x {megabytes:g} MB: " + "; ".join(
                f"{kind} {entry[kind]['throughput_mb_s']:.0f} MB/s, p50 {entry[kind]['p50_s']:.2f} s, "
                f"p99 {entry[kind]['p99_s']:.2f} s, {entry[kind]['failed']} failed" for kind in KINDS)
                + f"; ours/nginx {entry['ours']['throughput_ratio']:.2f}x, private {entry['ours-auth']['throughput_ratio']:.2f}x")
    finally:
        for server in servers:
            processes.stop(server.process)
        processes.stop(nginx)
        shutil.rmtree(base, ignore_errors=True)
    return {"fleets": results, "rounds": rounds}


def summary(runs: list[dict]) -> dict:
    """The medians over rounds of each figure; failures summed; the highest peak."""
    def median(key: str) -> float | None:
        values = [run[key] for run in runs if run.get(key) is not None]
        return statistics.median(values) if values else None

    merged = {key: median(key) for key in ("wall_s", "throughput_mb_s", "p50_s", "p99_s", "rss_before_mb")}
    merged["failed"] = sum(run["failed"] for run in runs)
    merged["errors"] = dict(sum((Counter(run["errors"]) for run in runs), Counter()))
    peaks = [run["rss_peak_mb"] for run in runs if run.get("rss_peak_mb") is not None]
    merged["rss_peak_mb"] = max(peaks) if peaks else None
    return merged


GOAL = 0.8  # of nginx's throughput, for anonymous and private reads alike


def targets(results: dict) -> list[tuple[str, str, str, bool]]:
    rows = []
    for entry in results["fleet"]["fleets"]:
        name = f"{entry['clients']} clients x {entry['megabytes']:g} MB"
        for kind, label in (("ours", "anonymous"), ("ours-auth", "private reads")):
            ours = entry[kind]
            rows.append((f"fleet {name}, {label}: throughput / nginx sendfile (medians)",
                         f"{ours['throughput_ratio']:.2f}x, {ours['failed']} failed", f">= {GOAL}x, none failed",
                         ours["throughput_ratio"] >= GOAL and ours["failed"] == 0))
    return rows


def failures(row: dict) -> str:
    """What the failed transfers said, briefly: `` (curl: (56) Recv failure x 2)``."""
    said = "; ".join(f"{reason} x {count}" for reason, count in sorted(row.get("errors", {}).items()))
    return f" ({said[:200]})" if said else ""


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(results: dict, date: str, load_average: tuple[float, ...]) -> list[str]:
    fleet = results["fleet"]
    lines = [SECTION, "", f"Measured {date} (1, 5, 15-minute load average at the start of the run: "
             f"{', '.join(f'{x:.2f}' for x in load_average)}). Goal: our throughput at least {GOAL}x nginx's, "
             "anonymous and private reads alike, no failed download, memory flat.", "",
             "| fleet | server | throughput (MB/s) | / nginx | p50 completion (s) | p99 completion (s) | wall (s) | "
             "failed | index RSS before / peak (MB) |", "|---|---|---|---|---|---|---|---|---|"]
    for entry in fleet["fleets"]:
        for kind, label in (("nginx", "nginx, sendfile"), ("ours", "ours, anonymous"), ("ours-auth", "ours, private reads")):
            row = entry[kind]
            ratio = f"{row['throughput_ratio']:.2f}x" if "throughput_ratio" in row else ""
            memory = f"{row['rss_before_mb']:.0f} / {row['rss_peak_mb']:.0f}" if row.get("rss_peak_mb") else "-"
            lines.append(f"| {entry['clients']} x {entry['megabytes']:g} MB | {label} | {row['throughput_mb_s']:.0f} | "
                         f"{ratio} | {_seconds(row['p50_s'])} | {_seconds(row['p99_s'])} | {row['wall_s']:.2f} | "
                         f"{row['failed']}{failures(row)} | {memory} |")
    lines += ["", f"Every fleet is curl fetching one file N times at once on loopback (`--parallel "
              f"--parallel-immediate`, {PER_CURL} transfers per curl process, output to /dev/null); each figure is the "
              f"median of {fleet['rounds']} round(s), nginx and ours alternating (failures: the sum over rounds; RSS: "
              "the index process's resident memory when the fleet starts and its highest sample during it). "
              "Throughput: the bytes every client received over the fleet's wall time; completion: each client's "
              "own transfer time. nginx is Debian's, `sendfile on`, `worker_processes auto`, serving the same "
              "folder. Ours is `python -m index.server` (waitress), whose download answers go out with "
              "`os.sendfile` (index/sendfile.py) after the application decided them: private reads check the "
              "consumers' credential on each request (bcrypt once, then the remembered HMAC: the first private "
              "fleet after the index started pays that one check, about 0.3 s, in its first round). The clients and "
              "the servers share this machine's CPUs."]
    return lines
