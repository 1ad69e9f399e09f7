"""``make bench`` at data scale: a 10,000,000-row Parquet source, released (pipeline/steps/sources.py,
frames.py, data_package.py), each measured process's peak RSS against the frame it holds in memory.

Three processes, as make release runs the steps: reading the source (the frame's deep memory size,
pandas' own count); the data package alone (read, canonical sha256, the Parquet file a row group at
a time, the wheel streamed: the steps ``make release`` runs before it trains); and ``make release``
itself (read, hash, data package, training of one model, the gate, build, upload of the data package
and the model package, verify), the index started beforehand in its own process. The release's peak is
that of all its processes at once (its process tree's summed PSS, benchmarks/model_scale.py): training's
worker processes and the build backend count with it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from benchmarks.model_scale import peak_rss_run
from benchmarks.servers import BenchError

RATIO_TARGET = 2.0  # the peak RSS of each process, as a multiple of the in-memory frame
BLOCK_ROWS = 1_000_000  # rows generated and written at a time
FEATURES = {"numeric": ["pclass", "age", "sibsp", "parch", "fare"], "categorical": ["sex", "embarked"]}
# One model, as a team with 10,000,000 rows would choose: histogram boosting (no SVC: its time grows with
# the square of the rows), two cross-validation folds, no ONNX check of every held-out row.
CONFIG = """
[dataset]
source = "{source}"
tag = "bigdata"
target = "survived"
numeric_features = {numeric}
categorical_features = {categorical}

[training]
test_size = 0.25
seed = 0
cv_folds = 2

[release]
max_accuracy_drop = 0.01
onnx = "off"

[models.Boosted]
estimator = "HistGradientBoostingClassifier"
max_iter = 20
random_state = "seed"
"""
HWM = "[int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]"
RSS = HWM.replace("VmHWM", "VmRSS")
FRAME = ("import json, sys\nfrom pipeline.steps import sources\n"
         "frame = sources.read_source(sys.argv[1])\n"
         f"print(json.dumps({{'frame_mb': int(frame.memory_usage(deep=True).sum()) / 2**20, 'rows': len(frame), "
         f"'read_peak_mb': {HWM}}}))\n")
DATA = ("import json, sys, tempfile, time\nfrom pathlib import Path\n"
        "from pipeline.config import load_dataset_config\nfrom pipeline.memory import return_freed_memory\n"
        "from pipeline.steps import data, data_wheel\n"
        "return_freed_memory()  # as every pipeline command does\n"
        f"config, times = load_dataset_config(), {{'start_mb': {RSS}}}\nstarted = time.perf_counter()\n"
        "read = data.read_data(config)\ntimes['read_and_hash_s'] = time.perf_counter() - started\n"
        "with tempfile.TemporaryDirectory() as folder:\n"
        "    started = time.perf_counter()\n"
        "    path, facts = data_wheel.write_file(read, data_wheel.describe(read, config.target, config.tag), Path(folder))\n"
        "    times['parquet_s'] = time.perf_counter() - started\n"
        "    started = time.perf_counter()\n"
        "    wheel = data_wheel.build_wheel(path, {**facts, 'version': '1.0.0+bigdata'}, Path(folder))\n"
        "    times['wheel_s'] = time.perf_counter() - started\n"
        f"    print(json.dumps({{**times, 'wheel_mb': wheel.stat().st_size / 2**20, 'peak_mb': {HWM}}}))\n")
STEP = re.compile(r"^    (\w+) done in ([\d.]+) s$", re.MULTILINE)


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """A Titanic-like Parquet file of ``rows`` rows, generated and written a block at a time."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng, writer, written = np.random.default_rng(seed), None, 0
    try:
        while written < rows:
            n = min(BLOCK_ROWS, rows - written)
            sex = rng.choice(["male", "female"], n)
            pclass = rng.integers(1, 4, n)
            age = np.round(rng.uniform(0, 80, n), 1)
            age[rng.random(n) < 0.2] = np.nan
            chance = 0.2 + 0.5 * (sex == "female") + 0.1 * (pclass == 1) - 0.002 * np.nan_to_num(age, nan=30)
            block = pd.DataFrame({"pclass": pclass, "age": age, "sibsp": rng.integers(0, 5, n),
                                  "parch": rng.integers(0, 4, n), "fare": np.round(rng.exponential(30, n), 4),
                                  "sex": sex, "embarked": rng.choice(["S", "C", "Q"], n),
                                  "survived": (rng.random(n) < chance).astype("int64")})
            table = pa.Table.from_pandas(block, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            written += n
    finally:
        if writer is not None:
            writer.close()


def data_steps(work: Path, rows: int, say) -> dict:
    """Release a ``rows``-row Parquet source; the frame's size and each process's wall time and peak RSS."""
    from tests.helpers import commit, copy_repo, index_env, pipeline

    base = work / "data-scale"
    base.mkdir()
    repo = copy_repo(base / "repo")
    env = index_env(base)
    env.pop("BENCH_ARGS", None)
    env["PYTHONPATH"] = f"{repo}:{repo / 'src'}"
    parquet = base / "big.parquet"
    say(f"==> a {rows:,}-row Parquet source: read, data package, release, their peak RSS against the frame")
    started = time.perf_counter()
    write_parquet(parquet, rows)
    result: dict = {"rows": rows, "parquet_mb": parquet.stat().st_size / 2**20, "load_average_at_start": os.getloadavg(),
                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    say(f"    wrote {parquet.name}: {result['parquet_mb']:.0f} MB ({time.perf_counter() - started:.1f} s)")
    config = repo / "dataset.toml"
    head = config.read_text().split("\n[dataset]")[0]
    config.write_text(head + CONFIG.format(source=parquet, numeric=json.dumps(FEATURES["numeric"]),
                                           categorical=json.dumps(FEATURES["categorical"])))
    commit(repo, "train on a large Parquet source")
    try:
        wall, peak, printed = peak_rss_run([sys.executable, "-c", FRAME, parquet], env, repo, base)
        result["frame"] = {**json.loads(printed.strip().splitlines()[-1]), "wall_s": wall}
        frame_mb = result["frame"]["frame_mb"]
        if result["frame"]["rows"] != rows:
            raise BenchError(f"the source read back {result['frame']['rows']} rows, not {rows}")
        say(f"    read: {wall:.1f} s, the frame {frame_mb:.0f} MB in memory, peak RSS {peak:.0f} MB")
        wall, peak, printed = peak_rss_run([sys.executable, "-c", DATA], env, repo, base)
        result["data_package"] = {**json.loads(printed.strip().splitlines()[-1]), "wall_s": wall, "peak_rss_mb": peak}
        grown = peak - result["data_package"]["start_mb"]
        say(f"    data package (read, sha256, Parquet, wheel): {wall:.1f} s, peak RSS {peak:.0f} MB "
            f"({peak / frame_mb:.2f}x the frame; {grown:.0f} MB above the interpreter's "
            f"{result['data_package']['start_mb']:.0f} MB), wheel {result['data_package']['wheel_mb']:.0f} MB")
        pipeline(repo, env, "index")
        wall, peak, printed = peak_rss_run([sys.executable, "-m", "pipeline", "release"], env, repo, base, timeout=7200,
                                           tree=True)
        if "released" not in printed:
            raise BenchError(f"the release published nothing:\n{printed[-2000:]}")
        steps = {name: float(seconds) for name, seconds in STEP.findall(printed)}
        wheels = sorted(Path(env["INDEX_DIR"]).glob("*_data-*.whl"))
        result["release"] = {"wall_s": wall, "peak_rss_mb": peak, "steps": steps,
                             "data_wheel_mb": wheels[0].stat().st_size / 2**20 if wheels else None}
        say(f"    make release: {wall:.1f} s, peak RSS {peak:.0f} MB ({peak / frame_mb:.2f}x the frame); steps "
            + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    finally:
        pipeline(repo, env, "index-stop", check=False)
        shutil.rmtree(base, ignore_errors=True)
    return result


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    data = results.get("data_scale")
    if not data:
        return []
    frame = data["frame"]["frame_mb"]
    rows = []
    for label, peak in ((f"data package of a {data['rows']:,}-row Parquet source: peak RSS / in-memory frame",
                         data["data_package"]["peak_rss_mb"]),
                        (f"make release of a {data['rows']:,}-row Parquet source: peak RSS / in-memory frame",
                         data["release"]["peak_rss_mb"])):
        ratio = peak / frame
        rows.append((label, f"{ratio:.2f}x ({peak:.0f} / {frame:.0f} MB)", f"< {RATIO_TARGET:.0f}x",
                     "met" if ratio < RATIO_TARGET else "MISSED"))
    return rows


def render(results: dict) -> list[str]:
    data = results.get("data_scale")
    if not data:
        return []
    frame, package, release = data["frame"], data["data_package"], data["release"]
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in release["steps"].items())
    return ["", f"## A {data['rows']:,}-row Parquet source: data package and release", "",
            "| process | wall (s) | peak RSS (MB) | peak / frame |", "|---|---|---|---|",
            f"| read the source (the frame: {frame['frame_mb']:.0f} MB in memory) | {frame['wall_s']:.1f} | "
            f"{frame['read_peak_mb']:.0f} | {frame['read_peak_mb'] / frame['frame_mb']:.2f}x |",
            f"| data package: read, canonical sha256, Parquet file, wheel | {package['wall_s']:.1f} | "
            f"{package['peak_rss_mb']:.0f} | {package['peak_rss_mb'] / frame['frame_mb']:.2f}x |",
            f"| make release: the above, training, gate, build, upload, verify (all its processes at once) | "
            f"{release['wall_s']:.1f} | "
            f"{release['peak_rss_mb']:.0f} | {release['peak_rss_mb'] / frame['frame_mb']:.2f}x |",
            "", f"The source: {data['parquet_mb']:.0f} MB of Parquet (benchmarks/data_scale.py), {data['rows']:,} "
            f"rows of 8 columns, measured {data['date']} (load average at the start "
            f"{', '.join(f'{x:.2f}' for x in data['load_average_at_start'])}: wall times are the machine's share, "
            f"memory is not); its data package's wheel {package['wheel_mb']:.0f} MB. The data package's process "
            f"started at {package['start_mb']:.0f} MB (the pipeline's libraries imported) and grew by "
            f"{package['peak_rss_mb'] - package['start_mb']:.0f} MB, "
            f"{(package['peak_rss_mb'] - package['start_mb']) / frame['frame_mb']:.2f}x the frame (read and hashed "
            f"{package['read_and_hash_s']:.1f} s, Parquet written {package['parquet_s']:.1f} s, wheel "
            f"{package['wheel_s']:.1f} s). The release's steps: {steps}. Its model: one "
            "HistGradientBoostingClassifier (20 iterations, two cross-validation folds, no ONNX check)."]
