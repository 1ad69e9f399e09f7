"""Signs of life in a long run: which group of tests runs, and how long each took.

The unit tests are one group; the integration tests run in groups of files (in
GROUPS' order; a file not listed runs last, in "other"). Each group prints a
header when it starts and its outcome and duration when it ends; a line before
pytest's closing summary gives every group's time. ``make test`` passes
MYMODEL_TEST_TIMES, a file where the unit run leaves its times for the
integration run's line. pytest's own closing line stays the last one.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

UNIT = "unit"
OTHER = "other"
GROUPS = {
    "index": ("test_index.py", "test_core_metadata.py", "test_simple_json.py", "test_page_cache.py", "test_yank.py",
              "test_index_uploads.py", "test_index_resources.py", "test_reader.py", "test_untrusted_wheels.py", "test_index_port.py", "test_teams.py",
              "test_scale.py", "test_devpi.py", "test_test_run.py", "test_bench.py", "test_fleet_path.py"),
    "releases": ("test_release.py", "test_faults.py", "test_sealed_releases.py", "test_concurrency.py", "test_versioning_rules.py",
                 "test_models_config.py", "test_reproducible_build.py", "test_data_tag.py", "test_team_models.py", "test_team_clone.py", "test_onnx.py", "test_targets.py", "test_own_model.py", "test_quick_start.py",
                 "test_make_venv.py", "test_data_package.py", "test_yanks_stay_decided.py", "test_team_data.py"),
    "clients": ("test_contract.py", "test_tasks.py", "test_registry.py", "test_channels.py", "test_consumers.py", "test_onnx_package.py"),
    "browser": ("test_registry_page.py", "test_registry_browser.py", "test_many_packages.py", "test_docs_site.py", "test_figures.py"),
}
TIMES_VARIABLE = "MYMODEL_TEST_TIMES"
WORDS = {"passed": "ok"}
ORDER = [UNIT, *GROUPS, OTHER]


def group_of(item: pytest.Item) -> str:
    if item.get_closest_marker("integration") is None:
        return UNIT
    name = Path(str(item.path)).name
    return next((group for group, files in GROUPS.items() if name in files), OTHER)


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
        if not self.times:
            return
        earlier = []
        record = os.environ.get(TIMES_VARIABLE)
        if record:
            path = Path(record)
            earlier = [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
            with path.open("a") as file:
                file.writelines(f"{group} {seconds:.1f}\n" for group, seconds in self.times.items())
        times = [(group, float(seconds)) for group, seconds in earlier] + list(self.times.items())
        total = sum(seconds for _, seconds in times)
        terminalreporter.write_line("groups: " + ", ".join(f"{group} {duration(seconds)}" for group, seconds in times)
                                    + f"; total {duration(total)}")

    def write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            if reporter._tw.width_of_current_line:  # after the dots of the group before
                reporter._tw.line()
            reporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RunGroups(config), "mymodel-run-groups")
