"""``make bench``: our index against stock pypiserver, side by side, then the release and the consumer.

    python -m benchmarks.run                      # the default configuration; writes benchmarks/RESULTS.md
    python -m benchmarks.run --tiny --output /tmp/RESULTS.md   # CI: every section, small and fast
    python -m benchmarks.run --only onnx          # one section: its own release, written into RESULTS.md
    python -m benchmarks.run --only data          # the same for the 10,000,000-row Parquet source
    python -m benchmarks.run --only fleet         # the fleet deploy against nginx, written into RESULTS.md

Everything runs on 127.0.0.1 in a temporary folder; every server and process started here is
stopped at the end, also on error or interruption.
"""

from __future__ import annotations

import argparse
import html
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import urllib.parse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from benchmarks import channel_history, data_scale, figures, fleet, model_scale, onnx_consumer, release_runs, synthetic
from benchmarks.synthetic import MODULE, PROJECT
from benchmarks.servers import (
    REPO, VENV_BIN, BenchError, Latency, Processes, basic_auth, clean_env, measure, request, start_server, timed_run,
)

DEFAULT_OUTPUT = REPO / "benchmarks" / "RESULTS.md"
USER = "bench"
MODEL = "RandomForestClassifier"
# dataset.toml for the big-data training section: no kernel model, fewer folds; the package keeps its name.
BIG_DATA_CONFIG = """[package]
name = "{package}"

[dataset]
source = "{source}"
tag = "bigdata"
target = "survived"
numeric_features = ["pclass", "age", "sibsp", "parch", "fare"]
categorical_features = ["sex", "embarked"]

[training]
test_size = 0.25
seed = 0
cv_folds = 3

[models.LogisticRegression]
estimator = "LogisticRegression"
max_iter = 1000

[models.HistGradientBoostingClassifier]
estimator = "HistGradientBoostingClassifier"
random_state = "seed"
"""
ROWS = [
    {"pclass": 1.0, "sex": "female", "age": 29.0, "sibsp": 0.0, "parch": 0.0, "fare": 211.3, "embarked": "S"},
    {"pclass": 3.0, "sex": "male", "age": 22.0, "sibsp": 1.0, "parch": 0.0, "fare": 7.25, "embarked": "S"},
    {"pclass": 2.0, "sex": "male", "age": None, "sibsp": 0.0, "parch": 0.0, "fare": 13.0, "embarked": "C"},
]
# The targets of the issue, stated at this configuration.
TARGET_CONFIG = (100, 20.0)

ONLY = ("onnx", "data", "fleet")  # the sections --only runs alone
DEFAULTS = dict(versions=100, size_mb=20.0, small_size_mb=None, requests=50, stock_requests=10,
                stock_auth_requests=5, install_runs=3, concurrency=16, load_repeats=30, cold_runs=5, budget=120.0,
                scale_versions=(100, 3000), train_rows=1_000_000, model_mb=1024, resolver_versions=3,
                resolver_wheel_mb=20.0, data_rows=10_000_000, onnx_runs=10, channel_promotions=100_000, promote_runs=30,
                changed_runs=3, noop_runs=5, fleet=("50x200", "200x200", "1000x5"), fleet_rounds=3, memory_runs=3)
TINY = dict(versions=5, size_mb=0.1, small_size_mb=0.01, requests=10, stock_requests=5,
            stock_auth_requests=3, install_runs=2, concurrency=16, load_repeats=5, cold_runs=2, budget=20.0,
            scale_versions=(5, 60), train_rows=20_000, model_mb=20, resolver_versions=3, resolver_wheel_mb=0.1,
            data_rows=50_000, onnx_runs=3, channel_promotions=2_000, promote_runs=5, changed_runs=1, noop_runs=2,
            fleet=("3x1", "12x0.2"), fleet_rounds=1, memory_runs=1)


# The bench's folder at its fullest: the synthetic project, and the large model's build and upload (the
# model, its wheel and sdist, the sdist's uncompressed rewrite, the index's stored files and the uploads in
# flight): 11.7 GB was taken for a 1,024 MB model. Full, the index answered the upload HTTP 500.
MODEL_DISK_FACTOR = 12
DISK_MARGIN_MB = 2048


def space_needed_mb(args: argparse.Namespace) -> float:
    """MB the whole bench needs free in its folder's file system at its fullest.

    >>> round(space_needed_mb(argparse.Namespace(versions=100, size_mb=20.0, small_size_mb=2.0, model_mb=1024)))
    18736
    """
    return args.versions * 2 * (args.size_mb + args.small_size_mb) + MODEL_DISK_FACTOR * args.model_mb + DISK_MARGIN_MB


def check_space(folder: Path, needed_mb: float) -> None:
    """Refuse to start a bench that would fill ``folder``'s file system half-way through."""
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < needed_mb:
        raise BenchError(f"make bench needs about {needed_mb / 1024:.0f} GB free in {folder} at its fullest (the "
                         f"large model's build and upload take about {MODEL_DISK_FACTOR}x its size) and "
                         f"{free_mb / 1024:.1f} GB are free there: free some space, or point it at a larger disk "
                         'with BENCH_ARGS="--workdir <folder>", or measure a smaller model with BENCH_ARGS="--model-mb <MB>"')


def say(text: str = "") -> None:
    print(text, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, help=f"versions in the synthetic project (default {DEFAULTS['versions']})")
    parser.add_argument("--size-mb", type=float, help=f"size of each synthetic file in MB (default {DEFAULTS['size_mb']})")
    parser.add_argument("--small-size-mb", type=float, help="the second file size, to show latency is flat (default size/10)")
    parser.add_argument("--requests", type=int, help=f"timed /simple/ requests to our index per measurement (default {DEFAULTS['requests']})")
    parser.add_argument("--stock-requests", type=int, help=f"the same against stock pypiserver (default {DEFAULTS['stock_requests']})")
    parser.add_argument("--stock-auth-requests", type=int,
                        help=f"authenticated requests to stock pypiserver: ~220 ms of bcrypt each (default {DEFAULTS['stock_auth_requests']})")
    parser.add_argument("--install-runs", type=int, help=f"runs of each pinned pip/uv install (default {DEFAULTS['install_runs']})")
    parser.add_argument("--concurrency", type=int, help=f"concurrent pinned installs against our index (default {DEFAULTS['concurrency']})")
    parser.add_argument("--load-repeats", type=int, help=f"in-process load() repeats (default {DEFAULTS['load_repeats']})")
    parser.add_argument("--cold-runs", type=int, help=f"cold python -c runs (default {DEFAULTS['cold_runs']})")
    parser.add_argument("--budget", type=float, help=f"seconds at most per request loop (default {DEFAULTS['budget']:.0f})")
    parser.add_argument("--scale-versions", type=int, nargs=2, metavar=("FEW", "MANY"),
                        help=f"versions for the page-scale section (default {' '.join(map(str, DEFAULTS['scale_versions']))})")
    parser.add_argument("--train-rows", type=int, help=f"rows of the big training data (default {DEFAULTS['train_rows']:,})")
    parser.add_argument("--model-mb", type=int,
                        help=f"size of the large model built, uploaded and loaded (default {DEFAULTS['model_mb']})")
    parser.add_argument("--memory-runs", type=int, help="fresh processes loading the large model, each way, for "
                                                         f"the median peak RSS (default {DEFAULTS['memory_runs']})")
    parser.add_argument("--resolver-versions", type=int,
                        help=f"versions on the index the resolvers see (default {DEFAULTS['resolver_versions']})")
    parser.add_argument("--resolver-wheel-mb", type=float,
                        help=f"size of each of their wheels in MB (default {DEFAULTS['resolver_wheel_mb']:g})")
    parser.add_argument("--data-rows", type=int,
                        help=f"rows of the Parquet source released (default {DEFAULTS['data_rows']:,})")
    parser.add_argument("--onnx-runs", type=int,
                        help=f"cold runs of each package in the ONNX consumer section (default {DEFAULTS['onnx_runs']})")
    parser.add_argument("--changed-runs", type=int,
                        help=f"releases with one model changed, for their median (default {DEFAULTS['changed_runs']})")
    parser.add_argument("--noop-runs", type=int,
                        help=f"releases with nothing changed, for their median (default {DEFAULTS['noop_runs']})")
    parser.add_argument("--channel-promotions", type=int,
                        help=f"promotions in the long channel history (default {DEFAULTS['channel_promotions']:,})")
    parser.add_argument("--promote-runs", type=int,
                        help=f"timed promotions at each history length (default {DEFAULTS['promote_runs']})")
    parser.add_argument("--fleet", nargs="+", metavar="CLIENTSxMB",
                        help=f"fleets: clients downloading one wheel of MB at once (default {' '.join(DEFAULTS['fleet'])})")
    parser.add_argument("--fleet-rounds", type=int,
                        help=f"rounds of each fleet against each server (default {DEFAULTS['fleet_rounds']})")
    parser.add_argument("--only", choices=ONLY, help="run this section alone (onnx: with its own release) and replace "
                                                     "it in --output, keeping the rest of the file")
    parser.add_argument("--tiny", action="store_true", help="CI: every section on a tiny configuration (< 60 s)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results file (default benchmarks/RESULTS.md)")
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temporary folder (default: the system's)")
    args = parser.parse_args(argv)
    base = TINY if args.tiny else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.small_size_mb is None:
        args.small_size_mb = args.size_mb / 10
    for key in ("versions", "requests", "stock_requests", "stock_auth_requests", "install_runs", "concurrency",
                "load_repeats", "cold_runs", "model_mb", "memory_runs", "resolver_versions", "data_rows",
                "channel_promotions", "promote_runs", "changed_runs", "noop_runs", "fleet_rounds"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    if args.size_mb <= 0 or args.small_size_mb <= 0 or args.budget <= 0 or args.resolver_wheel_mb <= 0 or args.data_rows <= 0:
        parser.error("sizes and --budget must be positive")
    try:
        args.fleets = fleet.parse_fleets(list(args.fleet))
    except ValueError as exc:
        parser.error(str(exc))
    return args


# ---------------------------------------------------------------- machine

def machine() -> dict:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    versions = {}
    for name in ("pypiserver", "waitress", "passlib", "bcrypt", "pip", "uv", "twine", "scikit-learn", "joblib",
                 "numpy", "scipy", "pandas"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        versions["uv"] = subprocess.run([str(VENV_BIN / "uv"), "--version"], capture_output=True, text=True,
                                        timeout=30).stdout.split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    memory_kb = first("/proc/meminfo", "MemTotal").split()[0]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": first("/proc/cpuinfo", "model name"),
        "memory_gib": round(int(memory_kb) / 2**20, 1) if memory_kb.isdigit() else "?",
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
        "commit": commit,
        "load_average_at_start": os.getloadavg(),
    }


# ---------------------------------------------------------------- sections

class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, processes: Processes) -> None:
        self.args, self.work, self.processes = args, work, processes
        self.logs = work / "logs"
        self.logs.mkdir()
        self.results: dict = {"config": {k: v for k, v in vars(args).items() if k not in ("output", "workdir")},
                              "timings": {}}
        self.password = secrets.token_urlsafe(24)
        self.htpasswd = work / "htpasswd"
        from passlib.apache import HtpasswdFile

        htpasswd = HtpasswdFile(default_scheme="bcrypt")
        htpasswd.set_password(USER, self.password)
        self.htpasswd.write_bytes(htpasswd.to_string())
        self.htpasswd.chmod(0o600)
        checks = []
        for _ in range(3):  # what one bcrypt check costs here: stock pays it on every authenticated request
            started = time.perf_counter()
            htpasswd.check_password(USER, self.password)
            checks.append(time.perf_counter() - started)
        self.results["bcrypt_check_ms"] = statistics.median(checks) * 1e3

    # -- 1. the synthetic projects
    def projects(self) -> None:
        args = self.args
        started = time.perf_counter()
        self.big = self.work / "packages-big"
        self.small = self.work / "packages-small"
        say(f"==> synthetic project: {args.versions} versions x 2 files x {args.size_mb:g} MB "
            f"(and x {args.small_size_mb:g} MB), plus one real wheel")
        self.real = synthetic.make_project(self.big, args.versions, int(args.size_mb * 2**20), seed=1)
        synthetic.make_project(self.small, args.versions, int(args.small_size_mb * 2**20), seed=2)
        self.real_sha = synthetic.sha256_file(self.big / synthetic.wheel_name(self.real))
        os.sync()  # no write-back of the fresh files during the measurements
        self.links = 2 * args.versions + 1
        total = sum(p.stat().st_size for p in self.big.iterdir())
        self.results["project"] = {"real_version": self.real, "files": self.links, "big_total_mb": total / 2**20,
                                   "small_total_mb": sum(p.stat().st_size for p in self.small.iterdir()) / 2**20}
        self.results["timings"]["generate_s"] = time.perf_counter() - started
        say(f"    {self.links} files, {total / 2**20:.0f} MB, real version {self.real} "
            f"({self.results['timings']['generate_s']:.1f} s)")

    def _pair(self, root: Path, auth: str, state: Path | None = None):
        """``state``: ours keeps its records there (the credentials with roles of index/access.py, as make index
        runs it); without one it checks the htpasswd alone."""
        stock = start_server(self.processes, "stock", root, self.htpasswd, auth, self.logs)
        try:
            ours = start_server(self.processes, "ours", root, self.htpasswd, auth, self.logs, state=state)
        except BaseException:
            self.processes.stop(stock.process)
            raise
        return stock, ours

    def _same_links(self, stock, ours, authorization: str | None) -> None:
        def links(server) -> tuple[str, ...]:  # resolved: ours links relative to the page, stock absolute
            page_url = server.simple_url + f"{PROJECT}/"
            hrefs = re.findall(r'href="([^"]+)"', request(page_url, authorization).body.decode())
            resolved = (urllib.parse.urlsplit(urllib.parse.urljoin(page_url, html.unescape(h))) for h in hrefs)
            return tuple(sorted(f"{urllib.parse.unquote(u.path)}#{u.fragment}" for u in resolved))

        if links(stock) != links(ours):
            raise BenchError("stock pypiserver and our index list different links (or hashes) for {PROJECT}")

    # -- 2./3. /simple/ latency at two sizes, 4. installs, 5. concurrency, then 6.
    def anonymous(self) -> None:
        args = self.args
        say(f"==> /simple/{PROJECT}/ latency, anonymous reads, {args.size_mb:g} MB and {args.small_size_mb:g} MB files")
        pairs = []
        try:
            for root in (self.big, self.small):
                pairs.append(self._pair(root, "update"))
            (stock_big, ours_big), (stock_small, ours_small) = pairs
            self.results["servers"] = {"stock": stock_big.software, "ours": ours_big.software}
            say(f"    Server headers: stock {stock_big.software!r}, ours {ours_big.software!r}")
            url = lambda server: server.simple_url + f"{PROJECT}/"  # noqa: E731
            s_big, = measure([(url(stock_big), None)], args.stock_requests, args.budget, self.links)
            s_small, = measure([(url(stock_small), None)], args.stock_requests, args.budget, self.links)
            # Ours at both sizes in alternation: the comparison of the two sizes is not skewed by drift.
            o_big, o_small = measure([(url(ours_big), None), (url(ours_small), None)], args.requests, args.budget,
                                     self.links)
            self._same_links(stock_big, ours_big, None)
            self._same_links(stock_small, ours_small, None)
            for key, size, s, o in (("latency_big", args.size_mb, s_big, o_big),
                                    ("latency_small", args.small_size_mb, s_small, o_small)):
                self.results[key] = {"stock": s.as_dict(), "ours": o.as_dict(), "ratio": s.median / o.median}
                say(f"    {size:g} MB files:")
                self._say_latency(s, o)
            for server in (stock_small, ours_small):
                self.processes.stop(server.process)
            self.installs(stock_big, ours_big)
            self.concurrent(ours_big)
            self.processes.stop(stock_big.process)
            self.authenticated(ours_big)
        finally:
            for pair in pairs:
                for server in pair:
                    self.processes.stop(server.process)

    @staticmethod
    def _say_latency(s: Latency, o: Latency) -> None:
        say(f"    stock: first {s.first * 1e3:.1f} ms, median {s.median * 1e3:.2f} ms, p95 {s.p95 * 1e3:.2f} ms (n={len(s.samples)})")
        say(f"    ours:  cold {o.first * 1e3:.1f} ms, median {o.median * 1e3:.2f} ms, p95 {o.p95 * 1e3:.2f} ms (n={len(o.samples)})")
        say(f"    stock/ours: {s.median / o.median:.1f}x")

    def _pip_install(self, server) -> float:
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                   "--no-cache-dir", "--disable-pip-version-check", "--index-url", server.simple_url,
                   f"{PROJECT}=={self.real}"]
        return timed_run(command, clean_env(), cwd=self.work, expect=f"Would install {PROJECT}-{self.real}")

    def _uv_venv(self, path: Path) -> Path:
        timed_run([VENV_BIN / "uv", "venv", "--quiet", "--python", sys.executable, path], clean_env(), cwd=self.work)
        return path / "bin" / "python"

    def _uv_command(self, server, python: Path) -> list:
        return [VENV_BIN / "uv", "pip", "install", "--python", python, "--no-cache", "--no-deps",
                "--index-url", server.simple_url, f"{PROJECT}=={self.real}"]

    def _uv_installed(self, venv: Path) -> bool:
        return any(f'__version__ = "{self.real}"' in p.read_text()
                   for p in venv.glob(f"lib/python*/site-packages/{MODULE}/__init__.py"))

    def installs(self, stock, ours) -> None:
        runs = self.args.install_runs
        say(f"==> pinned installs of {PROJECT}=={self.real} (median of {runs})")
        times = {"pip": {"stock": [], "ours": []}, "uv": {"stock": [], "ours": []}}
        for i in range(runs):
            for server in (stock, ours):  # alternate: no drift favours either
                times["pip"][server.kind].append(self._pip_install(server))
        for i in range(runs):
            for server in (stock, ours):
                venv = self.work / "uv" / f"{server.kind}-{i}"
                python = self._uv_venv(venv)
                times["uv"][server.kind].append(timed_run(self._uv_command(server, python), clean_env(), cwd=self.work))
                if not self._uv_installed(venv):
                    raise BenchError(f"uv did not install {PROJECT} {self.real} into {venv}")
                shutil.rmtree(venv, ignore_errors=True)
        result = {}
        for tool, by_kind in times.items():
            s, o = statistics.median(by_kind["stock"]), statistics.median(by_kind["ours"])
            result[tool] = {"stock_s": s, "ours_s": o, "ratio": s / o, "runs": runs}
            say(f"    {tool}: stock {s:.2f} s, ours {o:.2f} s, stock/ours {s / o:.1f}x")
        self.results["installs"] = result

    def concurrent(self, ours) -> None:
        n = self.args.concurrency
        say(f"==> {n} concurrent pinned installs against our index")
        result = {}
        # pip download: the wheel must arrive with the served hash.
        targets = [self.work / "concurrent" / f"pip-{i}" for i in range(n)]
        commands = [[sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
                     "--quiet", "--index-url", ours.simple_url, "-d", target, f"{PROJECT}=={self.real}"] for target in targets]
        codes, wall = self._together(commands, "pip")
        ok = sum(code == 0 and synthetic.sha256_file(t / synthetic.wheel_name(self.real)) == self.real_sha
                 for code, t in zip(codes, targets) if (t / synthetic.wheel_name(self.real)).is_file())
        result["pip_download"] = {"n": n, "succeeded": ok, "wall_s": wall}
        say(f"    pip download: {ok}/{n} succeeded, wall {wall:.2f} s")
        # uv pip install, each into its own fresh venv (created beforehand, not timed).
        venvs = [self.work / "concurrent" / f"uv-{i}" for i in range(n)]
        commands = [self._uv_command(ours, self._uv_venv(venv)) for venv in venvs]
        codes, wall = self._together(commands, "uv")
        ok = sum(code == 0 and self._uv_installed(venv) for code, venv in zip(codes, venvs))
        result["uv_install"] = {"n": n, "succeeded": ok, "wall_s": wall}
        say(f"    uv pip install: {ok}/{n} succeeded, wall {wall:.2f} s")
        self.results["concurrent"] = result
        shutil.rmtree(self.work / "concurrent", ignore_errors=True)

    def _together(self, commands: list[list], label: str, timeout: float = 300.0) -> tuple[list[int | None], float]:
        started = time.perf_counter()
        running = [self.processes.start(command, self.logs / f"concurrent-{label}-{i}.log", cwd=self.work, env=clean_env())
                   for i, command in enumerate(commands)]
        codes: list[int | None] = []
        for process in running:
            try:
                codes.append(process.wait(timeout=max(started + timeout - time.perf_counter(), 0.1)))
            except subprocess.TimeoutExpired:
                codes.append(None)
            self.processes.stop(process)
        return codes, time.perf_counter() - started

    # -- 6. authenticated reads (called with our anonymous big server still running)
    def authenticated(self, ours_anonymous) -> None:
        args = self.args
        say(f"==> /simple/{PROJECT}/ latency, authenticated reads (bcrypt: htpasswd, ours its credential records), {args.size_mb:g} MB files")
        stock, ours = self._pair(self.big, "read", state=self.work / "auth-state")
        try:
            for server in (stock, ours):
                status = request(server.simple_url + f"{PROJECT}/").status
                if status != 401:
                    raise BenchError(f"{server.kind} server with private reads answered {status} without credentials")
            header = basic_auth(USER, self.password)
            s, = measure([(stock.simple_url + f"{PROJECT}/", header)], args.stock_auth_requests, args.budget, self.links)
            # Ours authenticated and ours anonymous in alternation, for the ratio.
            o, a = measure([(ours.simple_url + f"{PROJECT}/", header), (ours_anonymous.simple_url + f"{PROJECT}/", None)],
                           args.requests, args.budget, self.links)
            self._same_links(stock, ours, header)
        finally:
            self.processes.stop(ours.process)
            self.processes.stop(stock.process)
        anonymous = self.results["latency_big"]
        self.results["latency_auth"] = {
            "stock": s.as_dict(), "ours": o.as_dict(), "ours_anonymous": a.as_dict(), "ratio": s.median / o.median,
            "ours_auth_over_anonymous": o.median / a.median,
            "ours_auth_over_anonymous_step3": o.median * 1e3 / anonymous["ours"]["median_ms"],
            "stock_auth_over_anonymous": s.median * 1e3 / anonymous["stock"]["median_ms"],
        }
        self._say_latency(s, o)
        say(f"    ours anonymous (alternating with authenticated): median {a.median * 1e3:.2f} ms, "
            f"p95 {a.p95 * 1e3:.2f} ms")
        say(f"    ours authenticated/anonymous: {o.median / a.median:.2f}x "
            f"({self.results['latency_auth']['ours_auth_over_anonymous_step3']:.2f}x against the figure above)")

    # -- 8. the number of versions: the cached simple page and the registry page
    def scale(self) -> None:
        from tests.registry_wheels import release_files

        few, many = self.args.scale_versions
        say(f"==> /simple/{PROJECT}/ at {few} and {many} versions (small release files), and the registry page at {few}")
        servers = {}
        try:
            for count in (few, many):
                root = self.work / f"versions-{count}"
                for i in range(count):
                    release_files(root, f"1.{i // 100}.{i % 100}+bench",
                                  {"LogisticRegression": 0.75 + (i % 10) / 100, "SVC": 0.8 - (i % 7) / 100}, package=MODULE)
                servers[count] = start_server(self.processes, "ours", root, self.htpasswd, "update", self.logs)
            simple = lambda count: (servers[count].simple_url + f"{PROJECT}/", None)  # noqa: E731
            at_few, at_many = measure([simple(few), simple(many)], self.args.requests, self.args.budget)
            page, = measure([(servers[few].url, None)], self.args.requests, self.args.budget)
            version_page, = measure([(servers[few].url + f"registry/{PROJECT}/1.0.{few - 1}+bench/", None)],
                                    self.args.requests, self.args.budget)
            compare_page, = measure([(servers[few].url + f"registry/{PROJECT}/compare/1.0.{few - 2}%2Bbench/"
                                      f"1.0.{few - 1}%2Bbench/", None)], self.args.requests, self.args.budget)
        finally:
            for server in servers.values():
                self.processes.stop(server.process)
        server_ratio = at_many.first_byte_median / at_few.first_byte_median
        self.results["scale"] = {"few": few, "many": many, "simple_few": at_few.as_dict(),
                                 "simple_many": at_many.as_dict(), "ratio": at_many.median / at_few.median,
                                 "first_byte_ratio": server_ratio,
                                 "registry_page": page.as_dict(), "version_page": version_page.as_dict(),
                                 "compare_page": compare_page.as_dict()}
        say(f"    /simple/{PROJECT}/: {few} versions median {at_few.median * 1e3:.2f} ms, {many} versions "
            f"{at_many.median * 1e3:.2f} ms ({at_many.median / at_few.median:.2f}x, the page is "
            f"{at_many.page_bytes / at_few.page_bytes:.0f}x the bytes); until the headers: "
            f"{at_few.first_byte_median * 1e3:.2f} ms and {at_many.first_byte_median * 1e3:.2f} ms ({server_ratio:.2f}x); "
            f"registry page at {few}: first {page.first * 1e3:.0f} ms, median {page.median * 1e3:.2f} ms")

    # -- 8b. a channel's history: its view and a promotion at one promotion and at many
    def channel_history(self) -> None:
        self.results["channel_history"] = channel_history.history_steps(
            self.work, self.processes, self.htpasswd, USER, self.password, self.logs, self.args.channel_promotions,
            self.args.requests, self.args.promote_runs, self.args.budget, say)

    # -- 8c. a fleet deploy: many clients downloading one wheel at once, ours against nginx
    def fleet(self) -> None:
        self.results["fleet"] = fleet.fleet_steps(self.work, self.processes, self.htpasswd, USER, self.password, self.logs,
                                                  self.args.fleets, self.args.fleet_rounds, say)

    # -- 9. training on big data, with the model set dataset.toml suggests for it
    def big_training(self) -> None:
        from tests.helpers import copy_repo, pipeline

        rows = self.args.train_rows
        say(f"==> make train on {rows:,} synthetic Titanic rows: LogisticRegression + HistGradientBoostingClassifier, 3 folds")
        base = self.work / "big-training"
        repo = copy_repo(base / "repo")
        data = synthetic.titanic_csv(base / "titanic-big.csv", rows, seed=3)
        (repo / "dataset.toml").write_text(BIG_DATA_CONFIG.format(package=PROJECT, source=data))
        started = time.perf_counter()
        result = pipeline(repo, clean_env(), "train", check=False)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise BenchError(f"make train on {rows:,} rows exited {result.returncode}:\n{result.stderr[-2000:]}")
        scores = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()
                  if line.startswith(("LogisticRegression", "HistGradientBoostingClassifier"))}
        self.results["training"] = {"rows": rows, "wall_s": wall, "accuracy": scores}
        say(f"    {wall:.1f} s; held-out accuracy " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))

    # -- 7. make release: cold, warm, one model changed, nothing changed
    def release(self) -> None:
        base = self.work / "release"
        base.mkdir()
        self.results["release"], self.release_repo = release_runs.measure(
            base, self.args.changed_runs, self.args.noop_runs, say)

    # -- 8. the consumer: load() against joblib.load
    def consumer(self) -> None:
        args = self.args
        version = self.results["release"]["warm"]["version"]
        wheel = self.release_repo / "dist" / f"{MODULE}-{version}-py3-none-any.whl"
        say(f"==> consumer: {MODULE}.load({MODEL!r}) vs joblib.load, from the released wheel {wheel.name}")
        folder = self.work / "consumer"
        site = folder / "site"
        with zipfile.ZipFile(wheel) as archive:  # a pure-Python wheel: unzipping it is installing it
            archive.extractall(site)
        path = site / MODULE / "models" / MODEL / "model.joblib"
        script = folder / "inprocess.py"
        script.write_text(INPROCESS.format(module=MODULE, site=str(site), path=str(path), model=MODEL, repeats=args.load_repeats,
                                           rows=repr(ROWS)))
        env = clean_env(PYTHONPATH=str(site))
        result = subprocess.run([sys.executable, script], cwd=folder, env=env, capture_output=True, text=True,
                                timeout=600, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise BenchError(f"in-process load measurement failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        inprocess = json.loads(result.stdout.strip().splitlines()[-1])
        say(f"    in-process: load() {inprocess['load_ms']:.2f} ms, joblib.load {inprocess['joblib_ms']:.2f} ms, "
            f"ratio {inprocess['ratio']:.3f} (median of {args.load_repeats})")

        frame = f"import pandas as pd; df = pd.DataFrame({ROWS!r})"
        commands = {
            "mymodel": [sys.executable, "-c", f"{frame}; import {MODULE} as package; print(package.load({MODEL!r}).predict(df))"],
            "joblib": [sys.executable, "-c", f"{frame}; import joblib; print(joblib.load({str(path)!r}).predict(df))"],
        }
        cold = {"mymodel": [], "joblib": []}
        for _ in range(args.cold_runs):
            for name, command in commands.items():
                cold[name].append(timed_run(command, env, cwd=folder, timeout=300))
        m, j = statistics.median(cold["mymodel"]), statistics.median(cold["joblib"])
        say(f"    cold python -c: {MODULE} {m:.2f} s, joblib {j:.2f} s, ratio {m / j:.3f} (median of {args.cold_runs})")
        self.results["consumer"] = {"wheel": wheel.name, "model_bytes": path.stat().st_size, **inprocess,
                                    "cold_mymodel_s": m, "cold_joblib_s": j, "cold_ratio": m / j,
                                    "cold_runs": args.cold_runs}

    # -- 9. the -onnx package against the scikit-learn one, each in a venv of its own
    def onnx(self) -> None:
        (self.work / "onnx").mkdir(exist_ok=True)
        version = self.results["release"]["warm"]["version"]
        self.results["onnx"] = onnx_consumer.measure(self.release_repo, version, MODEL, ROWS, self.args.onnx_runs,
                                                     self.args.load_repeats, self.work / "onnx", say)

    def onnx_alone(self) -> None:
        """``--only onnx``: one release of its own (make release in a copy of the repository), then the section."""
        from tests.helpers import copy_repo, index_env, make, pipeline

        base = self.work / "release"
        base.mkdir()
        self.release_repo = copy_repo(base / "repo")
        env = index_env(base)
        say("==> make release in a copy of the repository, for its two wheels")
        try:
            output = make(self.release_repo, "release", env, check=False, timeout=900)
        finally:
            pipeline(self.release_repo, env, "index-stop", check=False)
        released = re.search(rf"^released {re.escape(PROJECT)} (\S+) in", output.stdout, re.MULTILINE)
        if output.returncode != 0 or not released:
            raise BenchError(f"make release exited {output.returncode}:\n{(output.stdout + output.stderr)[-3000:]}")
        self.results["release"] = {"warm": {"version": released.group(1)}}
        self.onnx()

    # -- 10./11. a large model through make build and make upload, the index's memory, load memory
    def model_scale(self) -> None:
        self.results["model_scale"] = model_scale.release_steps(self.work, self.args.model_mb, ROWS, say,
                                                                 self.args.memory_runs)

    # -- 12. the bytes a resolver downloads, with PEP 658 core metadata
    def data_scale(self) -> None:
        self.results["data_scale"] = data_scale.data_steps(self.work, self.args.data_rows, say)

    def resolver(self) -> None:
        self.results["resolver"] = model_scale.resolver_bytes(
            self.work, self.processes, self.htpasswd, self.logs, self.args.resolver_versions,
            self.args.resolver_wheel_mb, say)


INPROCESS = '''\
import gc, json, statistics, time
import joblib, pandas as pd
import {module} as package

assert package.__file__.startswith({site!r}), package.__file__
path, name, repeats = {path!r}, {model!r}, {repeats}
df = pd.DataFrame({rows})
a, b = package.load(name), joblib.load(path)  # warm: imports, page cache
assert (a.predict(df) == b.predict(df)).all()
del a, b


def timed(call):
    gc.collect()  # neither call pays for the other's garbage
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


ours, raw = [], []
for i in range(repeats):  # alternating order
    for which in ((0, 1) if i % 2 == 0 else (1, 0)):
        if which == 0:
            ours.append(timed(lambda: package.load(name)))
        else:
            raw.append(timed(lambda: joblib.load(path)))
parts = {{}}
try:  # where load()'s extra time goes: the environment check and the sha256 check
    from {module}.environment import require_compatible
    from {module}.store import opened_verified

    def checked_only():
        with opened_verified(name + "/model.joblib"):
            pass
    parts["environment_check_ms"] = statistics.median(timed(require_compatible) for _ in range(repeats)) * 1e3
    parts["sha256_check_ms"] = statistics.median(timed(checked_only) for _ in range(repeats)) * 1e3
except Exception:
    pass
m, j = statistics.median(ours), statistics.median(raw)
print(json.dumps({{"load_ms": m * 1e3, "joblib_ms": j * 1e3, "ratio": m / j, "repeats": repeats,
                  "mymodel_version": package.__version__, **parts}}))
'''


# ---------------------------------------------------------------- report

def ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    config = results["config"]
    at_target = (config["versions"], config["size_mb"]) >= TARGET_CONFIG
    big, small, auth = results["latency_big"], results["latency_small"], results["latency_auth"]
    rows = []

    def status(ok: bool, applicable: bool = True) -> str:
        if not applicable:
            return "n/a (run below 100x2x20 MB)" if not ok else "met (run below 100x2x20 MB)"
        return "met" if ok else "MISSED"

    o = big["ours"]["median_ms"]
    rows.append((f"/simple/{PROJECT}/ median, ours, {config['size_mb']:g} MB files", f"{ms(o)} ms", "< 20 ms",
                 status(o < 20)))
    rows.append(("speed-up over stock pypiserver (median)", f"{big['ratio']:.0f}x", ">= 50x at 100x2x20 MB",
                 status(big["ratio"] >= 50, at_target)))
    flat = big["ours"]["median_ms"] / small["ours"]["median_ms"]
    flat_ok = flat <= 1.5 or abs(big["ours"]["median_ms"] - small["ours"]["median_ms"]) < 1.0
    stock_growth = big["stock"]["median_ms"] / small["stock"]["median_ms"]
    rows.append((f"latency flat across file sizes (ours {config['size_mb']:g} MB / {config['small_size_mb']:g} MB)",
                 f"{flat:.2f}x (stock: {stock_growth:.1f}x)", "<= 1.5x (or < 1 ms apart)", status(flat_ok)))
    ratio = auth["ours_auth_over_anonymous"]
    rows.append(("authenticated / anonymous reads, ours (medians, alternating requests)", f"{ratio:.2f}x", "<= 2x", status(ratio <= 2)))
    rows += release_runs.targets(results["release"])
    load = results["consumer"]["ratio"]
    rows.append((f"`{MODULE}.load()` / `joblib.load()` (median)", f"{load:.3f}", "<= 1.10", status(load <= 1.10)))
    scale = results["scale"]
    many = scale["simple_many"]["median_ms"]
    rows.append((f"/simple/{PROJECT}/ median at {scale['many']} versions, ours", f"{ms(many)} ms", "< 5 ms",
                 status(many < 5)))
    rows.append((f"/simple/{PROJECT}/ {scale['many']} / {scale['few']} versions, server time until the headers "
                 "(medians)", f"{scale['first_byte_ratio']:.2f}x", "<= 1.5x", status(scale["first_byte_ratio"] <= 1.5)))
    training = results["training"]
    rows.append((f"`make train` on {training['rows']:,} rows (LogisticRegression + HistGradientBoosting, 3 folds)",
                 f"{training['wall_s']:.0f} s", "< 600 s at 1,000,000 rows",
                 status(training["wall_s"] < 600, training["rows"] >= 1_000_000)))
    registry = scale["registry_page"]["median_ms"]
    rows.append((f"registry page `/` median at {scale['few']} versions, after the first request", f"{ms(registry)} ms",
                 "< 100 ms", status(registry < 100)))
    rows += channel_history.targets(results)
    rows += [(name, value, goal, "met" if ok else "MISSED") for name, value, goal, ok in fleet.targets(results)]
    rows += [(name, value, goal, "met" if ok else "MISSED")
             for name, value, goal, ok in figures.targets(results["release"]["warm"]["figures"])]
    compare = scale["compare_page"]["median_ms"]
    rows.append((f"compare page of two versions, median at {scale['few']} versions", f"{ms(compare)} ms", "< 100 ms",
                 status(compare < 100)))
    rows += [(name, value, goal, "met" if ok else "MISSED") for name, value, goal, ok in onnx_consumer.targets(results["onnx"])]
    return rows + model_scale.targets(results) + data_scale.targets(results)


def notes(results: dict) -> list[str]:
    out = []
    config = results["config"]
    big, auth, release, consumer = results["latency_big"], results["latency_auth"], results["release"], results["consumer"]
    out.append("Every request and server is on 127.0.0.1; each `/simple/` request opens a new connection and is "
               "timed until the whole page is read. Medians and p95 exclude the first request after start-up, "
               "reported separately ('first'/'cold'): ours hashes every file once there, stock hashes them on every request. "
               "Ours at the two file sizes, and ours authenticated vs anonymous, are measured in alternation "
               "(one request to each per round), so background load falls on both sides of those ratios alike.")
    out.append(f"Our `/simple/` page ({ms(big['ours']['median_ms'])} ms median for {results['project']['files']} "
               "files) is rendered once per change of the index folder and kept encoded (index/pagecache.py); a "
               "request costs the HTTP exchange and the copy of the page, whatever the files' number or size.")
    out.append("Both servers run under waitress over the same folder (stock: `pypi-server run --backend simple-dir "
               "--server auto`, which picks waitress, 4 threads: pypiserver 2.4.2 has no `--server waitress` choice; "
               f"ours: `python -m index.server`, 8 threads; Server headers: {results['servers']}). The files are in the page cache: stock's cost "
               "is sha256 over every byte of the project, not disk reads.")
    if (config["versions"], config["size_mb"]) < TARGET_CONFIG:
        out.append(f"This run used {config['versions']} versions x {config['size_mb']:g} MB, below the issue's "
                   "100 x 2 x 20 MB: the speed-up target does not apply, since stock's cost grows with total bytes.")
    busy = results.get("load_average_at_start", (0.0,))[0]
    if busy > 0.5:
        out.append(f"Other work was running when the benchmark started (1-minute load average {busy:.2f} on "
                   f"{os.cpu_count()} CPUs): CPU-bound figures (training, pip, cold imports) are noisier than on an "
                   "idle machine.")
    out.append(f"Authenticated reads: stock checks the bcrypt hash on every request "
               f"({results['bcrypt_check_ms']:.0f} ms per check here, measured with passlib; its median moved by "
               f"{auth['stock']['median_ms'] - results['latency_big']['stock']['median_ms']:+.0f} ms against "
               "anonymous); "
               f"ours checks each credential once (cold request {ms(auth['ours']['first_ms'])} ms, including the "
               "one-time hashing of the files) and then compares an HMAC held in memory.")
    out.append(release_runs.note(release))
    text = (f"load() vs joblib.load: {consumer['load_ms']:.2f} vs {consumer['joblib_ms']:.2f} ms "
            f"({consumer['load_ms'] - consumer['joblib_ms']:+.2f} ms), median of {consumer['repeats']} alternating "
            "calls in one process, each after gc.collect(). load() also checks the installed library versions")
    if "environment_check_ms" in consumer:
        text += (f" ({consumer['environment_check_ms']:.2f} ms) and the model file's sha256 against the manifest "
                 f"(hashed in blocks: {consumer['sha256_check_ms']:.2f} ms)")
    else:
        text += " and the model file's sha256"
    text += ", then unpickles from the file it checked."
    if consumer["ratio"] > 1.10:
        text += " The 10% target is missed here: the checks are a fixed cost of about 2 ms, about 10% of "
        text += f"unpickling this {consumer['model_bytes'] / 2**20:.2f} MB model."
        if consumer.get("environment_check_ms", 0) > 0.5:
            text += (f" Most of it is the environment check ({consumer['environment_check_ms']:.2f} ms): "
                     "`importlib.metadata.version()` parses each library's METADATA on every call; remembering "
                     f"the verdict for the life of the process (src/{MODULE}/environment.py) would remove it from "
                     "every load() after the first.")
    out.append(text)
    if big["ours"]["median_ms"] >= 20:
        out.append("Our /simple/ median is above 20 ms: see the p95 and the machine's load during the run.")
    return out


def render(results: dict, machine_info: dict, elapsed: float) -> str:
    c = results["config"]
    project = results["project"]
    lines = ["# Benchmark results", "",
             f"Written by `make bench` (`python -m benchmarks.run{' --tiny' if c['tiny'] else ''}`) on "
             f"{machine_info['date']}; the whole run took {elapsed:.0f} s.", "",
             "## Configuration", "",
             "| setting | value |", "|---|---|",
             f"| synthetic project | `{PROJECT}`: {c['versions']} versions x 2 files (wheel + sdist) of random bytes, "
             f"+ 1 real installable wheel ({project['real_version']}); {project['files']} files |",
             f"| file sizes | {c['size_mb']:g} MB ({project['big_total_mb']:.4g} MB in all) and "
             f"{c['small_size_mb']:g} MB ({project['small_total_mb']:.4g} MB in all) |",
             f"| /simple/ requests | ours {c['requests']}, stock {c['stock_requests']}, stock authenticated "
             f"{c['stock_auth_requests']} (at most {c['budget']:.0f} s per loop) |",
             f"| installs | {c['install_runs']} runs each; {c['concurrency']} concurrent |",
             f"| consumer | {c['load_repeats']} in-process load repeats; {c['cold_runs']} cold runs |",
             f"| model scale | a {c['model_mb']:,} MB model; resolvers against {c['resolver_versions']} versions of "
             f"{c['resolver_wheel_mb']:g} MB wheels |", "",
             "## Machine", "", "| | |", "|---|---|",
             f"| CPUs (nproc) | {machine_info['nproc']} ({machine_info['usable_cpus']} usable) |",
             f"| CPU model | {machine_info['cpu']} |",
             f"| memory | {machine_info['memory_gib']} GiB |",
             f"| OS | {machine_info['os']} |",
             f"| Python | {machine_info['python']} |",
             "| libraries | " + ", ".join(f"{k} {v}" for k, v in machine_info["libraries"].items()) + " |",
             f"| commit | {machine_info['commit']} (plus uncommitted changes, if any) |",
             f"| load average (1, 5, 15 min) | at start {', '.join(f'{x:.2f}' for x in machine_info['load_average_at_start'])}; "
             f"at end {', '.join(f'{x:.2f}' for x in results['load_average_at_end'])} |", "",
             "## Summary", "", "| target | measured | goal | |", "|---|---|---|---|"]
    lines += [f"| {name} | {value} | {goal} | {state} |" for name, value, goal, state in targets(results)]

    lines += ["", f"## /simple/{PROJECT}/ latency, anonymous reads", "",
              "| files | server | first request (ms) | median (ms) | p95 (ms) | n | stock/ours (median) |",
              "|---|---|---|---|---|---|---|"]
    for key, size in (("latency_big", c["size_mb"]), ("latency_small", c["small_size_mb"])):
        entry = results[key]
        for kind in ("stock", "ours"):
            row = entry[kind]
            first = f"{ms(row['first_ms'])} ({'first' if kind == 'stock' else 'cold'})"
            ratio = f"{entry['ratio']:.1f}x" if kind == "ours" else ""
            lines.append(f"| {c['versions']} x 2 x {size:g} MB | {kind} | {first} | {ms(row['median_ms'])} | "
                         f"{ms(row['p95_ms'])} | {row['n']} | {ratio} |")

    installs = results["installs"]
    lines += ["", f"## Pinned install of {PROJECT}=={project['real_version']} ({c['size_mb']:g} MB project)", "",
              "| client | stock (s) | ours (s) | stock/ours |", "|---|---|---|---|",
              f"| `pip install --dry-run --no-deps --no-cache-dir` | {installs['pip']['stock_s']:.2f} | "
              f"{installs['pip']['ours_s']:.2f} | {installs['pip']['ratio']:.1f}x |",
              f"| `uv pip install --no-cache --no-deps` into a fresh `uv venv` | {installs['uv']['stock_s']:.2f} | "
              f"{installs['uv']['ours_s']:.2f} | {installs['uv']['ratio']:.1f}x |",
              "", f"Median of {c['install_runs']} runs each, stock and ours alternating; no pip/uv configuration "
              "(`PIP_CONFIG_FILE=/dev/null`, `UV_NO_CONFIG=1`), no cache."]

    conc = results["concurrent"]
    lines += ["", "## Concurrent pinned installs against our index", "",
              "| clients | succeeded | wall (s) |", "|---|---|---|",
              f"| {conc['pip_download']['n']} x `pip download --no-deps` (sha256 checked) | "
              f"{conc['pip_download']['succeeded']}/{conc['pip_download']['n']} | {conc['pip_download']['wall_s']:.2f} |",
              f"| {conc['uv_install']['n']} x `uv pip install` into fresh venvs | "
              f"{conc['uv_install']['succeeded']}/{conc['uv_install']['n']} | {conc['uv_install']['wall_s']:.2f} |"]

    auth = results["latency_auth"]
    lines += ["", f"## Authenticated reads (`-a update,download,list` / `--auth read`, bcrypt: htpasswd, ours its credential records, "
              f"{c['size_mb']:g} MB files)", "",
              "| server | mode | first request (ms) | median (ms) | p95 (ms) | n |", "|---|---|---|---|---|---|",
              f"| stock | authenticated | {ms(auth['stock']['first_ms'])} | {ms(auth['stock']['median_ms'])} | "
              f"{ms(auth['stock']['p95_ms'])} | {auth['stock']['n']} |",
              f"| ours | authenticated | {ms(auth['ours']['first_ms'])} (cold) | {ms(auth['ours']['median_ms'])} | "
              f"{ms(auth['ours']['p95_ms'])} | {auth['ours']['n']} |",
              f"| ours | anonymous, alternating with the authenticated requests | (warm) | "
              f"{ms(auth['ours_anonymous']['median_ms'])} | {ms(auth['ours_anonymous']['p95_ms'])} | "
              f"{auth['ours_anonymous']['n']} |",
              f"| ours | anonymous (first section) | {ms(results['latency_big']['ours']['first_ms'])} (cold) | "
              f"{ms(results['latency_big']['ours']['median_ms'])} | {ms(results['latency_big']['ours']['p95_ms'])} | "
              f"{results['latency_big']['ours']['n']} |",
              "", f"Ours authenticated/anonymous (alternating): **{auth['ours_auth_over_anonymous']:.2f}x** "
              f"({auth['ours_auth_over_anonymous_step3']:.2f}x against the first section's anonymous median); "
              f"stock authenticated/ours authenticated: **{auth['ratio']:.0f}x** "
              f"(stock authenticated/anonymous: {auth['stock_auth_over_anonymous']:.2f}x)."]

    lines += release_runs.render(results["release"])
    lines += figures.render(results["release"]["warm"]["figures"])

    cons = results["consumer"]
    lines += ["", f"## Consumer: loading {MODEL} from the released wheel {cons['wheel']}", "",
              f"| measurement | {MODULE} | joblib | {MODULE}/joblib |", "|---|---|---|---|",
              f"| in-process `{MODULE}.load()` vs `joblib.load(path)`, median of {cons['repeats']} (ms) | "
              f"{cons['load_ms']:.2f} | {cons['joblib_ms']:.2f} | {cons['ratio']:.3f} |",
              f"| cold `python -c` import + load + predict, median of {cons['cold_runs']} (s) | "
              f"{cons['cold_mymodel_s']:.2f} | {cons['cold_joblib_s']:.2f} | {cons['cold_ratio']:.3f} |",
              "", f"Model file: {cons['model_bytes'] / 2**20:.2f} MB; the wheel is unzipped onto PYTHONPATH "
              "(a pure-Python wheel: that is what installing it does) and run with the project's Python."]

    scale = results["scale"]
    lines += ["", "## Versions: the cached simple page and the registry page", "",
              "| page | versions | bytes | first request (ms) | median (ms) | median until the headers (ms) | p95 (ms) | n |",
              "|---|---|---|---|---|---|---|---|"]
    for label, key, count in ((f"/simple/{PROJECT}/", "simple_few", scale["few"]), (f"/simple/{PROJECT}/", "simple_many", scale["many"]),
                              ("registry page `/`", "registry_page", scale["few"]),
                              ("a version page", "version_page", scale["few"]),
                              ("the compare page of two versions", "compare_page", scale["few"])):
        row = scale[key]
        lines.append(f"| {label} | {count} | {row['page_bytes']:,} | {ms(row['first_ms'])} | {ms(row['median_ms'])} | "
                     f"{ms(row['first_byte_median_ms'])} | {ms(row['p95_ms'])} | {row['n']} |")
    few, many = scale["simple_few"], scale["simple_many"]
    lines += ["", "Release files of a few KB with the pipeline's JSON files (tests/registry_wheels.py), so the "
              "pages read real metadata; the simple pages carry the PEP 592/658 attributes and are served from "
              "the page cache after the first request.", "",
              f"The server's time, until the status line and headers reach the client, is "
              f"{scale['first_byte_ratio']:.2f}x at {scale['many']} versions what it is at {scale['few']}: that is "
              f"the ratio the target is on. Reading the whole page takes {scale['ratio']:.2f}x as long, because "
              f"the page itself is {many['page_bytes'] / few['page_bytes']:.0f}x the bytes (every file is a link "
              "with its sha256 and its metadata's sha256); that part is the transfer, not the index's work."]
    lines += channel_history.render(results)
    lines += [""] + fleet.render(results, machine_info["date"], machine_info["load_average_at_start"])

    training = results["training"]
    lines += ["", "## Training on big data", "",
              "| rows | models | wall (s) | held-out accuracy |", "|---|---|---|---|",
              f"| {training['rows']:,} | LogisticRegression, HistGradientBoostingClassifier (3-fold CV) | "
              f"{training['wall_s']:.1f} | " + ", ".join(f"{k} {v:.4f}" for k, v in training["accuracy"].items()) + " |",
              "", "`python -m pipeline train` (what `make train` runs) in a copy of the repository, on Titanic rows "
              "resampled with jittered ages and fares (benchmarks/synthetic.py); the dataset.toml is BIG_DATA_CONFIG "
              "in benchmarks/run.py. With SVC configured, training warns first that its time grows with the "
              "square of the rows."]

    lines += [""] + onnx_consumer.render(results["onnx"], machine_info["date"], machine_info["load_average_at_start"])
    lines += model_scale.render(results)
    lines += data_scale.render(results)

    lines += ["", "## Notes", ""] + [f"- {note}" for note in notes(results)]
    lines += ["", "<!-- bench-data", json.dumps({"machine": machine_info, **results}, indent=1, default=str), "-->", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    processes = Processes()
    if args.only is None:
        try:
            check_space(Path(args.workdir or tempfile.gettempdir()), space_needed_mb(args))
        except BenchError as exc:
            say(f"Error: {exc}")
            return 1
    work = Path(tempfile.mkdtemp(prefix=f"{PROJECT}-bench-", dir=args.workdir))
    try:
        info = machine()
        say(f"benchmark in {work} ({info['nproc']} CPUs, {info['cpu']}, {info['memory_gib']} GiB, Python {info['python']})")
        bench = Bench(args, work, processes)
        bench.results["load_average_at_start"] = info["load_average_at_start"]
        if args.only == "onnx":
            bench.onnx_alone()
            section = onnx_consumer.render(bench.results["onnx"], info["date"], info["load_average_at_start"])
            return _write_alone(args.output, section, onnx_consumer.targets(bench.results["onnx"]), "ONNX", started)
        if args.only == "fleet":
            bench.fleet()
            section = fleet.render(bench.results, info["date"], info["load_average_at_start"])
            return _write_alone(args.output, section, fleet.targets(bench.results), "fleet", started)
        if args.only == "data":
            bench.data_scale()
            existing = args.output.read_text(encoding="utf-8") if args.output.is_file() else "# Benchmark results\n"
            report = replace_section(existing, data_scale.render(bench.results))
            _write(args.output, with_data(report, {"data_scale": bench.results["data_scale"]},
                                          {"data_rows": args.data_rows}))
            for name, value, goal, state in data_scale.targets(bench.results):
                say(f"    {name}: {value} (goal {goal}) {state}")
            say(f"wrote the data section into {args.output} ({time.perf_counter() - started:.0f} s)")
            return 0
        bench.projects()
        bench.anonymous()  # and installs, concurrency, authenticated reads
        bench.scale()
        bench.channel_history()
        bench.fleet()
        bench.big_training()
        bench.release()
        bench.consumer()
        bench.onnx()
        bench.model_scale()
        bench.data_scale()
        bench.resolver()
        elapsed = time.perf_counter() - started
        bench.results["timings"]["total_s"] = elapsed
        bench.results["load_average_at_end"] = os.getloadavg()
        report = render(bench.results, info, elapsed)
    except BenchError as exc:
        say(f"Error: {exc}")
        return 1
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    say("")
    say("==> summary")
    for name, value, goal, state in targets(bench.results):
        say(f"    {name}: {value} (goal {goal}) {state}")
    _write(args.output, report)
    say(f"wrote {args.output} ({elapsed:.0f} s)")
    return 0


def with_data(report: str, results: dict, config: dict) -> str:
    """``report`` with ``results`` (and ``config`` settings) replacing theirs in its bench-data JSON, if it has one.

    >>> print(with_data("x\\n<!-- bench-data\\n{\\"config\\": {\\"a\\": 1}, \\"b\\": 2}\\n-->\\n", {"b": 3}, {"a": 4}))
    x
    <!-- bench-data
    {
     "config": {
      "a": 4
     },
     "b": 3
    }
    -->
    <BLANKLINE>
    """
    found = re.search(r"<!-- bench-data\n(.*)\n-->", report, re.DOTALL)
    if not found:
        return report
    data = json.loads(found.group(1))
    data.update(results)
    data["config"] = {**data.get("config", {}), **config}
    return report[:found.start(1)] + json.dumps(data, indent=1, default=str) + report[found.end(1):]


def _write_alone(output: Path, section: list[str], goals: list[tuple[str, str, str, bool]], label: str,
                 started: float) -> int:
    """``--only``: ``section`` replaces its heading's section in ``output`` (or is added before the Notes)."""
    existing = output.read_text(encoding="utf-8") if output.is_file() else "# Benchmark results\n"
    for name, value, goal, ok in goals:
        say(f"    {name}: {value} (goal {goal}) {'met' if ok else 'MISSED'}")
    _write(output, replace_section(existing, section))
    say(f"wrote the {label} section into {output} ({time.perf_counter() - started:.0f} s)")
    return 0


def replace_section(text: str, section: list[str]) -> str:
    """``text`` (a RESULTS.md) with the section whose heading (its first ``## `` line) ``section`` has
    replaced by it, or added before the Notes."""
    heading = next(line for line in section if line.startswith("## "))
    block = "\n".join(section[section.index(heading):]) + "\n"
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        return text[:start] + block + (text[end + 1:] if end >= 0 else "")
    if "\n## Notes" in text:
        at = text.index("\n## Notes") + 1
        return text[:at] + block + "\n" + text[at:]
    return text.rstrip("\n") + "\n\n" + block


def _write(output: Path, report: str) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(report, encoding="utf-8")
    os.replace(temporary, output)


if __name__ == "__main__":
    raise SystemExit(main())
