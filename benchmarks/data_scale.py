"""``make bench`` at data scale: a large CSV through the data package's build, upload and verify
(pipeline/steps/data_package.py, data_wheel.py), each step in its own process with its peak memory, and the index's.

The steps are those of ``make release`` and ``make verify``: ``describe`` + ``build_wheel`` (the
facts read in chunks of rows, the file streamed into the wheel), ``publish`` (twine's upload, then
the read-back of the served bytes) and ``fetched`` (download, sha256 check, extraction).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from benchmarks.model_scale import peak_rss_run, vm_hwm_mb
from benchmarks.servers import BenchError
from benchmarks.synthetic import MODULE

VERSION = "1.0.0+bigdata"
MEMORY_TARGET_MB = 300  # each step's peak RSS, whatever the file's size
COLUMNS = "id,pclass,age,fare,sibsp,sex,embarked,survived\n"
BUILD = ("import json, sys\nfrom pathlib import Path\nfrom pipeline.steps import data_wheel as d\n"
         "csv, out = Path(sys.argv[1]), Path(sys.argv[2])\n"
         f"metadata = {{**d.describe(csv, str(csv), 'survived', 'bigdata'), 'version': {VERSION!r}}}\n"
         "wheel = d.build_wheel(csv, metadata, out)\n"
         "(out / 'metadata.json').write_text(json.dumps(metadata))\n")
PUBLISH = ("import json, sys\nfrom pathlib import Path\nfrom pipeline.steps import data_package as d\n"
           "from pipeline.config import index_settings\nfrom pipeline.indexes.connect import index_client\n"
           "wheel, metadata = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())\n"
           "d.publish(index_client(index_settings()), d.DataPlan(metadata, wheel, sys.argv[3], True, 'bench: publish'))\n")
FETCH = ("import sys\nfrom pipeline.steps import data_package as d\n"
         "from pipeline.config import index_settings\nfrom pipeline.indexes.connect import index_client\n"
         f"with d.fetched(index_client(index_settings()), {VERSION!r}, frozenset({{sys.argv[1]}}), 'bench') as found:\n"
         "    print(found.path.stat().st_size)\n")


def write_csv(path: Path, megabytes: float, seed: int = 0, block_rows: int = 50_000) -> int:
    """A Titanic-like CSV of about ``megabytes`` MB, written a block of rows at a time; its row count."""
    import numpy as np
    import pandas as pd

    rng, target, rows = np.random.default_rng(seed), int(megabytes * 2**20), 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(COLUMNS)
        while out.tell() < target:
            n = block_rows
            block = pd.DataFrame({"id": np.arange(rows, rows + n), "pclass": rng.integers(1, 4, n),
                                  "age": np.round(rng.uniform(0, 80, n), 1), "fare": np.round(rng.exponential(30, n), 4),
                                  "sibsp": rng.integers(0, 5, n), "sex": rng.choice(["male", "female"], n),
                                  "embarked": rng.choice(["S", "C", "Q"], n), "survived": rng.integers(0, 2, n)})
            block.to_csv(out, header=False, index=False)
            rows += n
    return rows


def data_steps(work: Path, megabytes: float, say) -> dict:
    """Build, upload and verify a data package of a ``megabytes`` MB CSV: wall time and peak RSS of each."""
    from tests.helpers import copy_repo, index_env, pipeline

    base = work / "data-scale"
    base.mkdir()
    repo = copy_repo(base / "repo")
    env = index_env(base)
    env.pop("BENCH_ARGS", None)
    env["PYTHONPATH"] = f"{repo}:{repo / 'src'}"
    csv, out = base / "big.csv", base / "out"
    out.mkdir()
    say(f"==> a {megabytes:,.0f} MB data file: the data package's build, upload and verify, their peak RSS")
    started = time.perf_counter()
    rows = write_csv(csv, megabytes)
    result: dict = {"csv_mb": csv.stat().st_size / 2**20, "rows": rows}
    say(f"    wrote {csv.name}: {result['csv_mb']:.0f} MB, {rows:,} rows ({time.perf_counter() - started:.1f} s)")
    try:
        wall, peak, _ = peak_rss_run([sys.executable, "-c", BUILD, csv, out], env, repo, base)
        wheel = out / f"{MODULE}_data-{VERSION}-py3-none-any.whl"
        from pipeline.package.own_package import store

        digest = store.sha256_file(wheel)
        result["build"] = {"wall_s": wall, "peak_rss_mb": peak, "wheel_mb": wheel.stat().st_size / 2**20}
        say(f"    build (facts in chunks of rows, file streamed into the wheel): {wall:.1f} s, peak RSS {peak:.0f} MB "
            f"(wheel {result['build']['wheel_mb']:.0f} MB)")
        pipeline(repo, env, "index")
        pid = json.loads((Path(env["INDEX_STATE"]) / "server.json").read_text())["pid"]
        at_start = vm_hwm_mb(pid)
        wall, peak, _ = peak_rss_run([sys.executable, "-c", PUBLISH, wheel, out / "metadata.json", digest], env, repo, base)
        result["upload"] = {"wall_s": wall, "peak_rss_mb": peak}
        say(f"    upload (twine, then the read-back of the served bytes): {wall:.1f} s, peak RSS {peak:.0f} MB")
        wall, peak, printed = peak_rss_run([sys.executable, "-c", FETCH, digest], env, repo, base)
        if int(printed.split()[-1]) != csv.stat().st_size:
            raise BenchError(f"the data package's file came back with {printed.split()[-1]} bytes, not {csv.stat().st_size}")
        result["verify"] = {"wall_s": wall, "peak_rss_mb": peak}
        say(f"    verify's fetch (download, sha256 check, extraction): {wall:.1f} s, peak RSS {peak:.0f} MB")
        result["index"] = {"started_mb": at_start, "after_mb": vm_hwm_mb(pid)}
        say(f"    index peak RSS: {at_start:.0f} MB started, {result['index']['after_mb']:.0f} MB after upload and download")
    finally:
        pipeline(repo, env, "index-stop", check=False)
        shutil.rmtree(base, ignore_errors=True)
    return result


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    data = results.get("data_scale")
    if not data:
        return []
    peak = max(data[step]["peak_rss_mb"] for step in ("build", "upload", "verify"))
    return [(f"data package of a {data['csv_mb']:.0f} MB CSV: peak RSS of build, upload, verify", f"{peak:.0f} MB",
             f"< {MEMORY_TARGET_MB} MB", "met" if peak < MEMORY_TARGET_MB else "MISSED")]


def render(results: dict) -> list[str]:
    data = results.get("data_scale")
    if not data:
        return []
    lines = ["", "## A large data file as a data package", "",
             "| step | wall (s) | peak RSS (MB) |", "|---|---|---|"]
    for label, key in (("build: facts in chunks of rows, the file streamed into the wheel", "build"),
                       ("upload: twine, then the read-back of the served bytes", "upload"),
                       ("verify: download, sha256 check, extraction", "verify")):
        lines.append(f"| {label} | {data[key]['wall_s']:.1f} | {data[key]['peak_rss_mb']:.0f} |")
    lines += ["", f"A CSV of {data['csv_mb']:.0f} MB ({data['rows']:,} rows) compressed into a "
              f"{data['build']['wheel_mb']:.0f} MB wheel (benchmarks/data_scale.py); the index's peak RSS went from "
              f"{data['index']['started_mb']:.0f} MB to {data['index']['after_mb']:.0f} MB. Each step runs in its own "
              "process, as make release and make verify run them."]
    return lines
