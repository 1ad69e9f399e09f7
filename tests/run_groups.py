"""The test suite in groups: which group runs, how long each took; and ``make test`` running them side by side.

The unit tests are one group; the integration tests run in groups of files (GROUPS; a file
not listed runs in "other", which is a group like the others). As a pytest plugin (every run,
conftest.py), each group prints a header when it starts and its outcome and duration when it
ends, and a line before pytest's closing summary gives every group's time.

As a program (``python -m tests.run_groups``, what ``make test`` and ``make integration`` run),
it starts one pytest process per group, ``--jobs`` at a time, the longest (by the last run's
times, kept in .cache/test-groups.json) first: most integration tests wait on subprocesses,
servers and I/O, so more groups than cores pay. Each process writes to a file of its own;
a group's output is printed whole, in one piece, when the group ends, then a line with every
group's time, the wall time and the CPU time, and last a closing line in pytest's words
("N passed, M failed in Xs") that sums the groups'. The releases of the test clones share
one cache (RELEASE_CACHE, pipeline/cache.py) for the run, and each group's processes run with one OpenMP and one
OpenBLAS thread (ONE_THREAD) unless the caller set a count. SIGINT ignored (a background job)
stays ignored in every group; SIGTERM or Ctrl-C ends every group, and each group's own
reaper (tests/reaper.py) stops what it started.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

UNIT = "unit"
OTHER = "other"
GROUPS = {
    "index": ("test_index.py", "test_core_metadata.py", "test_simple_json.py", "test_page_cache.py", "test_yank.py",
              "test_index_uploads.py", "test_index_resources.py", "test_reader.py", "test_untrusted_wheels.py",
              "test_test_run.py", "test_test_groups.py", "test_index_port.py",
              "test_teams.py"),
    "bench": ("test_bench.py", "test_fleet_path.py"),
    "devpi": ("test_devpi.py", "test_scale.py"),
    "releases": ("test_release.py", "test_release_cache.py", "test_sealed_releases.py", "test_reproducible_build.py", "test_data_tag.py"),
    "faults": ("test_faults.py", "test_concurrency.py", "test_models_config.py", "test_make_venv.py"),
    "targets": ("test_targets.py", "test_team_models.py", "test_quick_start.py"),
    "clone": ("test_team_clone.py",),
    # data was the longest group (12 min of a 21-minute run): split where no session fixture is shared (a split
    # that shares one, as clients' released and diabetes_release, pays for it again in each process)
    "data": ("test_data_package.py", "test_team_data.py"),
    "versions": ("test_versioning_rules.py", "test_yanks_stay_decided.py"),
    "onnx": ("test_onnx.py", "test_own_model.py"),
    "clients": ("test_contract.py", "test_tasks.py", "test_registry.py", "test_channels.py", "test_consumers.py", "test_onnx_package.py"),
    "browser": ("test_registry_page.py", "test_registry_browser.py", "test_many_packages.py", "test_docs_site.py", "test_figures.py"),
}
# Seconds each group took in the fresh-clone CI run of make test here (2026-12-07 06:28, 20m53s, four at a time, its
# groups' CPU time 38m25s), the groups changed since scaled by their CPU time measured alone (python -m tests.run_groups
# on the group): clone 3m31s -> 1m30s, bench 2m44s -> 2m12s, data (5m41s) split into data 3m33s and versions 1m37s.
# The order a clone without .cache/test-groups.json (CI) starts them in, longest first; a group not here starts last.
MEASURED = {"clients": 823, "releases": 483, "data": 454, "index": 444, "devpi": 442, "faults": 328, "targets": 282,
            "bench": 263, "onnx": 246, "versions": 207, UNIT: 194, "clone": 160, "browser": 121}
GROUP_VARIABLE = "MYMODEL_TEST_GROUP"  # set by the runner in each group's process: its summary line is the runner's
WORDS = {"passed": "ok"}
ORDER = [UNIT, *GROUPS, OTHER]
REPO = Path(__file__).resolve().parent.parent
TIMES_FILE = REPO / ".cache" / "test-groups.json"  # each group's last wall time: the longest starts first
DEFAULT_JOBS = 4
# More groups than cores: an OpenMP or OpenBLAS pool in each process (HistGradientBoosting, numpy) spins while it
# waits for cores the other groups hold. Measured here at load 12: a 3-fold cross-validation of a
# HistGradientBoostingClassifier on 5,000 rows took 15-24 s CPU (55-125 s wall) with two threads, 1.6 s with one.
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
INTEGRATION_MARK = re.compile(r"^(?:pytestmark\s*=.*|@)pytest\.mark\.integration\b", re.MULTILINE)


def group_of_file(name: str) -> str:
    return next((group for group, files in GROUPS.items() if name in files), OTHER)


def group_of(item: pytest.Item) -> str:
    if item.get_closest_marker("integration") is None:
        return UNIT
    return group_of_file(Path(str(item.path)).name)


def duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class RunGroups:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.groups: dict[str, str] = {}  # nodeid -> group
        self.sizes: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.times: dict[str, float] = {}
        self.current: str | None = None
        self.started = 0.0

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items.sort(key=lambda item: ORDER.index(group_of(item)))  # stable: files keep their order in a group
        self.groups = {item.nodeid: group_of(item) for item in items}
        self.sizes = Counter(self.groups.values())

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        group = self.groups.get(nodeid, OTHER)
        if group != self.current:
            self.end_group()
            self.current, self.started = group, time.monotonic()
            self.outcomes[group] = Counter()
            self.write(f"==> {group}: {self.sizes[group]} tests ({time.strftime('%H:%M:%S')})")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcomes = self.outcomes.get(self.groups.get(report.nodeid, OTHER))
        if outcomes is None:
            return
        if report.failed:
            outcomes["failed" if report.when == "call" else "errors"] += 1
        elif report.when == "call" or report.skipped:
            outcomes[report.outcome] += 1

    def pytest_sessionfinish(self) -> None:
        self.end_group()

    def end_group(self) -> None:
        if self.current is None:
            return
        self.times[self.current] = time.monotonic() - self.started
        # "ok", not "passed": pytest's closing line stays the only one that says "N passed"
        said = ", ".join(f"{count} {WORDS.get(outcome, outcome)}"
                         for outcome, count in self.outcomes[self.current].items())
        self.write(f"<== {self.current}: {said or 'nothing ran'} in {duration(self.times[self.current])}")
        self.current = None

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.times or os.environ.get(GROUP_VARIABLE):
            return
        total = sum(self.times.values())
        terminalreporter.write_line("groups: " + ", ".join(f"{group} {duration(seconds)}"
                                                           for group, seconds in self.times.items())
                                    + f"; total {duration(total)}")

    def write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            if reporter._tw.width_of_current_line:  # after the dots of the group before
                reporter._tw.line()
            reporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RunGroups(config), "mymodel-run-groups")


# ---------------------------------------------------------------- the runner: groups side by side

@dataclass
class Group:
    name: str
    command: list[str]
    output: Path
    what: str  # what it runs, in a few words
    pid: int = 0
    started: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    code: int | None = None
    counts: Counter[str] = field(default_factory=Counter)


def integration_groups(targets: list[str]) -> dict[str, list[str]]:
    """The pytest arguments of each integration group: the files (or node ids) of ``targets`` by file name;
    a folder stands for its test files that hold integration tests."""
    groups: dict[str, list[str]] = {}
    for target in targets:
        path = Path(target.split("::", 1)[0])
        if path.is_dir():
            files = [str(f) for f in sorted(path.rglob("test_*.py"))
                     if INTEGRATION_MARK.search(f.read_text(encoding="utf-8", errors="replace"))]
        else:
            files = [target]
        for name in files:
            groups.setdefault(group_of_file(Path(name.split("::", 1)[0]).name), []).append(name)
    return {name: groups[name] for name in ORDER if name in groups}


CLOSING = re.compile(r"^=*\s*(?P<counts>(?:\d+ \w+(?:, )?)+) in [\d.]+s")


CLOSING_WORDS = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "warnings", "errors")


def closing_counts(text: str) -> Counter[str]:
    """pytest's closing line of a group's output, as counts.

    >>> closing_counts("1 failed, 2 passed, 1 warning in 3.10s (0:00:03)")
    Counter({'passed': 2, 'failed': 1, 'warnings': 1})
    """
    for line in reversed(text.splitlines()):
        found = CLOSING.match(line.strip())
        if found:
            counts = Counter()
            for number, word in (part.split() for part in found.group("counts").split(", ")):
                counts[word if word in CLOSING_WORDS else f"{word}s"] += int(number)  # "1 error", "1 warning"
            return counts
    return Counter()


def closing_line(counts: Counter[str], seconds: float) -> str:
    """pytest's closing line for the groups together (what CI reads last).

    >>> closing_line(Counter({"passed": 3, "errors": 1}), 65.5)
    '3 passed, 1 error in 65.50s (0:01:05)'
    """
    said = ", ".join(f"{counts[word]} {word[:-1] if counts[word] == 1 and word in ('errors', 'warnings') else word}"
                     for word in CLOSING_WORDS if counts[word])
    hours, rest = divmod(int(seconds), 3600)
    return f"{said or 'no tests ran'} in {seconds:.2f}s ({hours}:{rest // 60:02d}:{rest % 60:02d})"


def run_side_by_side(groups: list[Group], jobs: int, out) -> None:
    """Start up to ``jobs`` groups at a time, longest first; print each group's output when it ends."""
    expected = _last_times()
    waiting = sorted(groups, key=lambda g: -expected.get(g.name, 0.0))
    running: dict[int, Group] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                group = waiting.pop(0)
                with open(group.output, "wb") as sink:
                    process = subprocess.Popen(group.command, stdout=sink, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, cwd=REPO,
                                               env={**os.environ, GROUP_VARIABLE: group.name})
                group.pid, group.started = process.pid, time.monotonic()
                running[process.pid] = group
                out(f"--> {group.name} started ({time.strftime('%H:%M:%S')}): {group.what}")
            pid, status, usage = os.wait4(-1, 0)
            group = running.pop(pid, None)
            if group is None:
                continue
            group.wall, group.cpu = time.monotonic() - group.started, usage.ru_utime + usage.ru_stime
            group.code = os.waitstatus_to_exitcode(status)
            text = group.output.read_text(encoding="utf-8", errors="replace")
            group.counts = closing_counts(text)
            out(f"\n==== {group.name}: its whole output (exit {group.code}, {duration(group.wall)} wall, "
                f"{duration(group.cpu)} CPU) ====")
            out(text.rstrip("\n"))
            out(f"==== {group.name}: end ====\n")
    except BaseException:
        for pid in running:
            try:
                os.kill(pid, signal.SIGTERM)  # each pytest's reaper then stops what it started
            except ProcessLookupError:
                pass
        for pid in list(running):
            os.waitpid(pid, 0)
        raise


def _last_times() -> dict[str, float]:
    """Each group's time in this clone's last run, else MEASURED."""
    try:
        times = json.loads(TIMES_FILE.read_text())
        return {str(k): float(v) for k, v in times.items()} if isinstance(times, dict) else dict(MEASURED)
    except (OSError, ValueError, TypeError):
        return dict(MEASURED)


def _remember_times(groups: list[Group]) -> None:
    try:
        times = {**_last_times(), **{g.name: round(g.wall, 1) for g in groups if g.code in (0, 1)}}
        TIMES_FILE.parent.mkdir(parents=True, exist_ok=True)
        TIMES_FILE.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # only the order of the next run depends on it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.run_groups", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("TEST_JOBS") or DEFAULT_JOBS),
                        help=f"groups at a time (TEST_JOBS; default {DEFAULT_JOBS})")
    parser.add_argument("--unit", metavar="PATHS", help="also run the unit tests and doctests of these paths "
                                                         "(space-separated), as one group")
    parser.add_argument("targets", nargs="*", default=["tests"], help="integration test files, folders or node ids")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the groups first (run_side_by_side)
    scratch = Path(tempfile.mkdtemp(prefix="mymodel-test-groups-"))
    os.environ.setdefault("RELEASE_CACHE", str(scratch / "release-cache"))  # shared by the groups' test clones
    for name in ONE_THREAD:  # a group's processes share the cores with the other groups' (ONE_THREAD)
        os.environ.setdefault(name, "1")
    pytest_command = [sys.executable, "-m", "pytest", "-q"]
    groups = []
    if args.unit is not None:
        groups.append(Group(UNIT, [*pytest_command, "-m", "not integration", "--doctest-modules", *args.unit.split()],
                            scratch / f"{UNIT}.txt", f"unit tests and doctests of {args.unit}"))
    for name, selected in integration_groups(args.targets).items():
        groups.append(Group(name, [*pytest_command, "-m", "integration", "--durations=10", *selected],
                            scratch / f"{name}.txt", f"{len(selected)} integration test file(s) or tests"))

    def say(line: str) -> None:
        print(line, flush=True)

    say(f"{len(groups)} groups, {min(args.jobs, len(groups))} at a time: {', '.join(g.name for g in groups)}")
    try:
        run_side_by_side(groups, args.jobs, say)
    except KeyboardInterrupt:
        say("interrupted: every group stopped")
        return 130
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _remember_times(groups)
    wall, cpu = time.monotonic() - started, sum(g.cpu for g in groups)
    say("groups: " + ", ".join(f"{g.name} {duration(g.wall)}" for g in groups) + f"; total {duration(wall)}")
    say(f"(side by side, {args.jobs} at a time: the groups' times add up to {duration(sum(g.wall for g in groups))}, "
        f"their CPU time to {duration(cpu)})")
    failed = [g.name for g in groups if g.code not in (0, 5)]
    if failed:
        say(f"failed: {', '.join(failed)} (their whole output is above)")
    say(closing_line(sum((g.counts for g in groups), Counter()), wall))
    if failed:
        return 1
    return 5 if groups and all(g.code == 5 for g in groups) else 0


if __name__ == "__main__":
    raise SystemExit(main())
