"""The -onnx distribution against the scikit-learn package, as a consumer runs them: each wheel of one
release installed with its runtime dependencies (from the test wheelhouse) into a fresh venv of its
own, then a cold process that imports the package and predicts one row (median of N, alternating),
its peak RSS (the child's own VmHWM), the venv's installed size, the in-process latency of
one-row and 10,000-row predictions, and whether the two packages' predictions are the same.

    python -m benchmarks.run --only onnx     # this section alone, written into benchmarks/RESULTS.md
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

from benchmarks.servers import VENV_BIN, BenchError, clean_env
from benchmarks.synthetic import MODULE, PROJECT

TWIN = f"{PROJECT}-onnx"  # the release's -onnx distribution (pipeline/package/onnx_names.py)

SECTION = f"## ONNX consumer: {TWIN} against {PROJECT} (joblib)"
BIG_ROWS = 10_000
# Targets of issue 21 for the -onnx package, against the scikit-learn one.
COLD_MAX_S, COLD_SPEEDUP, RSS_MAX_RATIO, SIZE_MAX_RATIO = 0.25, 4.0, 0.6, 0.5

# The peak RSS is the process's own VmHWM, printed as it ends: wait4's ru_maxrss also counts the
# parent's memory at fork (Linux keeps the pre-exec high-water mark), which made both packages 176 MiB.
COLD = ("import {package}; {package}.predict({model!r}, {row!r})\n"
        "print(next(line for line in open('/proc/self/status') if line.startswith('VmHWM:')).split()[1])")
INPROCESS = '''\
import gc, json, statistics, sys, time
import {package}

rows = {rows!r}
big = [rows[i % len(rows)] for i in range({big})]
package, model, repeats = {package}, {model!r}, {repeats}


def timed(call, times):
    seconds = []
    for _ in range(times):
        gc.collect()
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1e3


def records(result):
    return result.to_dict(orient="records") if hasattr(result, "to_dict") else result


package.predict(model, rows[:1])  # warm: the model loaded, the session built
one = timed(lambda: package.predict(model, rows[:1]), repeats)
many = timed(lambda: package.predict(model, big), max(5, repeats // 5))
print(json.dumps({{"one_row_ms": one, "big_ms": many, "predictions": records(package.predict(model, big))}}))
'''


def measure(release_repo: Path, version: str, model: str, rows: list[dict], runs: int, repeats: int, work: Path,
            say: Callable[[str], None]) -> dict:
    from tests.helpers import ensure_wheelhouse

    dist = release_repo / "dist"
    wheels = {TWIN: dist / f"{MODULE}_onnx-{version}-py3-none-any.whl",
              PROJECT: dist / f"{MODULE}-{version}-py3-none-any.whl"}
    missing = [str(w) for w in wheels.values() if not w.is_file()]
    if missing:
        raise BenchError(f"the release did not build {', '.join(missing)}; is ONNX conversion on ([release] onnx)?")
    say(f"==> ONNX consumer: {wheels[TWIN].name} against {wheels[PROJECT].name}, fresh venvs")
    env = clean_env()
    pythons, sizes = {}, {}
    for name, wheel in wheels.items():
        venv = work / f"venv-{name}"
        _run([VENV_BIN / "uv", "venv", "--quiet", "--python", VENV_BIN / "python", venv], env)
        # --compile-bytecode: as pip installs (uv leaves compiling to the first import otherwise)
        _run([VENV_BIN / "uv", "pip", "install", "--quiet", "--compile-bytecode", "--python", venv / "bin" / "python",
              "--no-index", "--find-links", ensure_wheelhouse(), wheel], env)
        pythons[name], sizes[name] = venv / "bin" / "python", _size(venv)
    if _run([pythons[TWIN], "-c", "import sklearn"], env, check=False).returncode == 0:
        raise BenchError(f"scikit-learn got into the {TWIN} venv: its requirements are wrong")

    row = rows[0]
    commands = {name: [python, "-c", COLD.format(package=name.replace("-", "_"), model=model, row=row)]
                for name, python in pythons.items()}
    cold: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():  # alternating: background load falls on both alike
            cold[name].append(_cold_run(command, env, work))
    result = {"wheels": {n: w.name for n, w in wheels.items()}, "model": model, "runs": runs, "rows": BIG_ROWS,
              "installed_mb": {n: s / 2**20 for n, s in sizes.items()}}
    for name, samples in cold.items():
        result.setdefault("cold_s", {})[name] = statistics.median(s for s, _, _ in samples)
        result.setdefault("cold_cpu_s", {})[name] = statistics.median(c for _, c, _ in samples)
        result.setdefault("peak_rss_mb", {})[name] = statistics.median(r for _, _, r in samples) / 1024
    inprocess = {}
    for name, python in pythons.items():
        script = work / f"inprocess-{name}.py"
        script.write_text(INPROCESS.format(package=name.replace("-", "_"), rows=rows, big=BIG_ROWS, model=model,
                                           repeats=repeats))
        inprocess[name] = json.loads(_run([python, script], env).stdout.strip().splitlines()[-1])
    result["one_row_ms"] = {n: r["one_row_ms"] for n, r in inprocess.items()}
    result["big_ms"] = {n: r["big_ms"] for n, r in inprocess.items()}
    result.update(_agreement(inprocess[TWIN]["predictions"], inprocess[PROJECT]["predictions"]))
    o, s = result["cold_s"][TWIN], result["cold_s"][PROJECT]
    say(f"    cold import + predict one row: {TWIN} {o:.3f} s, {PROJECT} {s:.3f} s ({s / o:.1f}x), "
        f"peak RSS {result['peak_rss_mb'][TWIN]:.0f} vs {result['peak_rss_mb'][PROJECT]:.0f} MiB, "
        f"venvs {result['installed_mb'][TWIN]:.0f} vs {result['installed_mb'][PROJECT]:.0f} MiB, "
        f"{result['labels_differing']} of {BIG_ROWS} labels differ")
    return result


def _run(command: list, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True, timeout=900,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(map(str, command))} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result


def _cold_run(command: list, env: dict, cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB) of one process: wait4 gives that child's own CPU
    time, the child prints its own peak RSS (VmHWM)."""
    started = time.perf_counter()
    process = subprocess.Popen([str(c) for c in command], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output, errors = process.stdout.read().decode(errors="replace"), process.stderr.read().decode(errors="replace")
    process.stdout.close()
    process.stderr.close()
    if process.returncode != 0:
        raise BenchError(f"{command[-1][:80]}... exited {process.returncode}:\n{errors[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, int(output.split()[-1])


def _size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (each inode once)."""
    seen, total = set(), 0
    for root, _, names in os.walk(folder):
        for name in names:
            info = os.lstat(os.path.join(root, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def _agreement(onnx: list[dict], scikit: list[dict]) -> dict:
    """Labels (or a regression's values, to 1e-6 relative) that differ, and the largest difference of any number."""
    numbers = [k for k, v in scikit[0].items() if not isinstance(v, str)]
    difference = max((abs(float(a[k]) - float(b[k])) for a, b in zip(onnx, scikit) for k in numbers), default=0.0)
    if isinstance(scikit[0]["prediction"], str):
        differing = sum(a["prediction"] != b["prediction"] for a, b in zip(onnx, scikit, strict=True))
    else:
        differing = sum(not math.isclose(a["prediction"], b["prediction"], rel_tol=1e-6, abs_tol=1e-6)
                        for a, b in zip(onnx, scikit, strict=True))
    return {"labels_differing": differing, "max_difference": difference, "same_columns": list(onnx[0]) == list(scikit[0])}


def targets(result: dict) -> list[tuple[str, str, str, bool]]:
    o, s = result["cold_s"][TWIN], result["cold_s"][PROJECT]
    rss = result["peak_rss_mb"][TWIN] / result["peak_rss_mb"][PROJECT]
    size = result["installed_mb"][TWIN] / result["installed_mb"][PROJECT]
    return [
        (f"cold import + predict one row, {TWIN} (median)", f"{o:.3f} s", f"< {COLD_MAX_S} s", o < COLD_MAX_S),
        (f"{PROJECT} (joblib) / {TWIN}, cold (medians)", f"{s / o:.1f}x", f">= {COLD_SPEEDUP:g}x", s / o >= COLD_SPEEDUP),
        (f"peak RSS, {TWIN} / {PROJECT}", f"{rss:.2f}x", f"<= {RSS_MAX_RATIO}x", rss <= RSS_MAX_RATIO),
        (f"installed runtime venv, {TWIN} / {PROJECT}", f"{size:.2f}x", f"<= {SIZE_MAX_RATIO}x", size <= SIZE_MAX_RATIO),
        (f"predictions on {result['rows']:,} rows", f"{result['labels_differing']} labels differ, max difference "
         f"{result['max_difference']:.1e}", "equal", result["labels_differing"] == 0 and result["same_columns"]),
    ]


def render(result: dict, when: str, load: tuple[float, ...]) -> list[str]:
    o, s = TWIN, PROJECT
    lines = [SECTION, "",
             f"Measured {when} (load average at the start {', '.join(f'{x:.2f}' for x in load)}); model "
             f"{result['model']}; wheels {result['wheels'][o]} and {result['wheels'][s]}, each installed with its "
             "runtime dependencies into a fresh `uv venv` (`uv pip install --compile-bytecode`, as pip compiles; no pip/uv "
             "configuration).", "",
             "| target | measured | goal | |", "|---|---|---|---|"]
    lines += [f"| {name} | {value} | {goal} | {'met' if ok else 'MISSED'} |" for name, value, goal, ok in targets(result)]
    lines += ["", f"| measurement | {TWIN} | {PROJECT} (joblib) | {PROJECT} / {TWIN} |", "|---|---|---|---|"]
    for label, key, unit, digits in ((f"cold `python -c` import + predict one row, median of {result['runs']}", "cold_s", "s", 3),
                                     ("CPU time (user + system) of that process (median)", "cold_cpu_s", "s", 3),
                                     ("peak RSS of that process (median)", "peak_rss_mb", "MiB", 0),
                                     ("installed runtime venv", "installed_mb", "MiB", 0),
                                     ("in-process predict, one row (median)", "one_row_ms", "ms", 2),
                                     (f"in-process predict, {result['rows']:,} rows (median)", "big_ms", "ms", 1)):
        a, b = result[key][o], result[key][s]
        lines.append(f"| {label} ({unit}) | {a:.{digits}f} | {b:.{digits}f} | {b / a:.1f}x |")
    lines += ["", "The cold process runs `import <package>; <package>.predict(model, row)` with a dict row: the "
              "ONNX package imports numpy and onnxruntime only (no pandas: it answers with plain rows where pandas "
              "is not installed), the scikit-learn package imports pandas, scikit-learn and joblib. Both check the "
              "installed libraries and the model file's sha256 before loading. Peak RSS is each child's own "
              "(its `VmHWM` as it ends), and its CPU time comes from `wait4` (other processes on the machine stretch it less than the wall "
              "time); the venv size counts every file once. The two packages alternate, so background load "
              "falls on both alike."]
    return lines
