"""``make bench``, the channel history: a channel's view and a promotion at one promotion and at many.

The index keeps each promotion as a row of its records (index/channels.py): appending one and
reading the current one are index lookups. Two indexes over the same package folder, one whose
channel has a single promotion and one whose channel has ``promotions`` (default 100,000, put
into its records in one transaction before it starts, as a restored history would be), are each
asked for ``/channels/prod/simple/<package>/`` (a new connection a request, until the whole page is
read) and sent ``POST /+promote`` (authenticated, alternating between two versions); medians.
"""

from __future__ import annotations

import base64
import statistics
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks.servers import BenchError, measure, start_server
from benchmarks.synthetic import MODULE, PROJECT

PAGE_TARGET_MS = 5.0
PROMOTE_TARGET_MS = 50.0
VERSIONS = ("1.0.0+bench", "1.0.1+bench")


def _filled(state: Path, packages: Path, promotions: int) -> None:
    """A state folder whose channel ``prod`` has ``promotions`` promotions, each pinning its version's files."""
    import hashlib

    from index.channels import ChannelStore, Promotion
    from index.statedb import StateDB

    pins = {version: {PROJECT: {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
                                for path in packages.glob(f"{MODULE}-{version}*")}} for version in VERSIONS}
    ChannelStore(StateDB(state)).restore("prod", (
        Promotion(0, VERSIONS[n % 2], "2026-01-01T00:00:00Z", "bench", "c0ffee", f"promotion {n}", pins[VERSIONS[n % 2]])
        for n in range(promotions)))


def _promote(server, authorization: str, version: str) -> float:
    form = urllib.parse.urlencode({"channel": "prod", "name": PROJECT, "version": version}).encode()
    request = urllib.request.Request(f"{server.url}+promote", data=form, headers={"Authorization": authorization})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise BenchError(f"POST {server.url}+promote answered {response.status}")
    return time.perf_counter() - started


def history_steps(work: Path, processes, htpasswd: Path, user: str, password: str, logs: Path, promotions: int,
                  requests: int, promote_runs: int, budget: float, say) -> dict:
    from tests.registry_wheels import release_files

    say(f"==> a channel with 1 and with {promotions:,} promotions: its view and a promotion (medians)")
    base = work / "channel-history"
    packages = base / "packages"
    for version in VERSIONS:
        release_files(packages, version, {"LogisticRegression": 0.8}, package=MODULE)
    authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    result: dict = {"promotions": promotions}
    lengths = (("one", 1), ("many", promotions))
    servers = {}
    try:
        for label, count in lengths:
            state = base / f"state-{label}"
            started = time.perf_counter()
            _filled(state, packages, count)
            result["fill_s"] = time.perf_counter() - started
            servers[label] = start_server(processes, "ours", packages, htpasswd, "update", logs, state=state)
        # one request to each index per round, and promotions to each in turn: background load falls on both alike
        pages = measure([(f"{servers[label].url}channels/prod/simple/{PROJECT}/", None) for label, _ in lengths],
                        requests, budget)
        times: dict[str, list[float]] = {label: [] for label, _ in lengths}
        for label, _ in lengths:
            _promote(servers[label], authorization, VERSIONS[0])  # the credential checked once (bcrypt), then remembered
        for n in range(promote_runs):
            for label, _ in lengths:
                times[label].append(_promote(servers[label], authorization, VERSIONS[n % 2]))
    finally:
        for server in servers.values():
            processes.stop(server.process)
    for (label, count), page in zip(lengths, pages):
        result[label] = {"page": page.as_dict(), "promote_median_ms": statistics.median(times[label]) * 1e3,
                         "promote_runs": len(times[label])}
        say(f"    {count:,} promotion{'s' if count > 1 else ''}: /channels/prod/simple/{PROJECT}/ median "
            f"{page.median * 1e3:.2f} ms, POST /+promote median {result[label]['promote_median_ms']:.2f} ms")
    return result


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    history = results["channel_history"]
    many = history["many"]
    page, promote = many["page"]["median_ms"], many["promote_median_ms"]
    return [(f"/channels/prod/simple/{PROJECT}/ median at {history['promotions']:,} promotions", f"{page:.2f} ms",
             f"< {PAGE_TARGET_MS:g} ms", "met" if page < PAGE_TARGET_MS else "MISSED"),
            (f"`POST /+promote` median at {history['promotions']:,} promotions", f"{promote:.2f} ms",
             f"< {PROMOTE_TARGET_MS:g} ms", "met" if promote < PROMOTE_TARGET_MS else "MISSED")]


def render(results: dict) -> list[str]:
    history = results["channel_history"]
    one, many = history["one"], history["many"]
    return ["", f"## A channel with {history['promotions']:,} promotions", "",
            "| promotions | `/channels/prod/simple/` median (ms) | p95 (ms) | `POST /+promote` median (ms) |",
            "|---|---|---|---|",
            f"| 1 | {one['page']['median_ms']:.2f} | {one['page']['p95_ms']:.2f} | {one['promote_median_ms']:.2f} |",
            f"| {history['promotions']:,} | {many['page']['median_ms']:.2f} | {many['page']['p95_ms']:.2f} | "
            f"{many['promote_median_ms']:.2f} |",
            "",
            f"Two indexes over one package folder, their channel `prod` holding 1 and {history['promotions']:,} "
            f"promotions (put into the records in one transaction before the start, {history.get('fill_s', 0):.1f} s); "
            f"the page: {many['page']['n']} requests to each, in alternation, each on a new connection; a promotion: "
            f"{many['promote_runs']} authenticated `POST /+promote` to each in turn, alternating between two versions, "
            "each one row appended and flushed to disk (SQLite, WAL). The current promotion is an index lookup and "
            "the page is kept per promotion: neither reads the history."]
