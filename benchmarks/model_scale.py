"""``make bench`` at model scale: a large model through ``make build`` and ``make upload``, the index's
memory while it receives and serves it, the package's ``load()`` against ``joblib.load(path)`` on it, and the
bytes a resolver downloads to resolve a range against big wheels.

Peak memory is measured on real processes: a command's with ``getrusage(RUSAGE_CHILDREN)`` in a small
wrapper (which covers make's python child and the build backend it runs), the index's as the VmHWM of
the server process recorded in its pid file.
"""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from benchmarks import synthetic
from benchmarks.synthetic import MODULE, PROJECT
from benchmarks.servers import HOST, BenchError, clean_env, proc_status_mb, start_server, timed_run

BIG = "Big"  # the large model's name in the package
BASE_MODEL = "LogisticRegression"  # the trained model the large one is made from
MEMORY_TARGET_MB = 300  # make build / make upload of the large model
INDEX_TARGET_MB = 100
LOAD_TARGET = 1.10
# Runs argv[2:], then writes the largest peak RSS (KB) of its waited-for descendants to argv[1].
RSS_WRAPPER = ("import resource, subprocess, sys\n"
               "code = subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL).returncode\n"
               "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
               "sys.exit(code)\n")
# The same for a command whose processes run side by side (a release: training, joblib's workers, the build
# backend): every 0.1 s the proportional set size (PSS: a page shared by n processes counts 1/n in each) of
# the command's process tree is summed; the report is that sum's peak, or the largest single process's peak
# RSS when higher (a peak shorter than the sampling interval), in KB.
TREE_RSS_WRAPPER = ("import os, resource, subprocess, sys, time\n"
                    "def parents():\n"
                    "    found = {}\n"
                    "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
                    "        try:\n"
                    "            found[int(pid)] = int(open(f'/proc/{pid}/stat').read().rpartition(')')[2].split()[1])\n"
                    "        except (OSError, ValueError, IndexError):\n"
                    "            pass\n"
                    "    return found\n"
                    "def pss(pid):\n"
                    "    try:\n"
                    "        return sum(int(l.split()[1]) for l in open(f'/proc/{pid}/smaps_rollup') if l.startswith('Pss:'))\n"
                    "    except (OSError, ValueError):\n"
                    "        return 0\n"
                    "process, peak = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL), 0\n"
                    "while process.poll() is None:\n"
                    "    parent, tree = parents(), {process.pid}\n"
                    "    while grown := {p for p, pp in parent.items() if pp in tree and p not in tree}:\n"
                    "        tree |= grown\n"
                    "    peak = max(peak, sum(map(pss, tree)))\n"
                    "    time.sleep(0.1)\n"
                    "single = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
                    "open(sys.argv[1], 'w').write(str(max(peak, single)))\n"
                    "sys.exit(process.returncode)\n")
# The trained pipeline plus ``megabytes`` of float64 weights in 64 MB arrays: it predicts like the
# trained model and weighs what a large model does; joblib keeps each array apart (mmap-able).
ENLARGE = ("import sys, joblib, numpy\n"
           "source, target, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
           "model = joblib.load(source)\n"
           "rng = numpy.random.default_rng(0)\n"
           "sizes = [64] * (megabytes // 64) + ([megabytes % 64] if megabytes % 64 else [])\n"
           "model.embeddings_ = [rng.standard_normal(size << 17) for size in sizes]\n"
           "joblib.dump(model, target)\n")
HWM = "[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]"
# argv: how (package, joblib or package-mmap), the model file, the rows, the folder the package is in.
LOAD = (f"import json, sys, joblib, numpy, pandas, {MODULE} as package\n"
        "how, path, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])\n"
        "assert package.__file__.startswith(sys.argv[4]), package.__file__\n"
        "if how == 'joblib':\n    model = joblib.load(path)\n"
        f"elif how == 'package':\n    model = package.load({BIG!r})\n"
        f"else:\n    model = package.load({BIG!r}, mmap_mode='r')\n"
        "assert sum(a.nbytes for a in model.embeddings_) > 0\n"
        "model.predict(pandas.DataFrame(rows))\n"
        f"print({HWM})\n")


def vm_hwm_mb(pid: int) -> float:
    """A running process's peak RSS so far."""
    peak = proc_status_mb(pid, "VmHWM")
    if peak is not None:
        return peak
    raise BenchError(f"cannot read the peak memory of pid {pid} (/proc/{pid}/status); is it still running?")


def peak_rss_run(command: list, env: dict, cwd: Path, scratch: Path, timeout: float = 1200,
                 tree: bool = False) -> tuple[float, float, str]:
    """Run ``command`` (which must succeed) under the wrapper: (wall s, peak RSS MB of its processes, output);
    ``tree``: of all its processes at once (TREE_RSS_WRAPPER), not of the largest one."""
    report = scratch / f".rss-{time.monotonic_ns()}"
    started = time.perf_counter()
    wrapper = TREE_RSS_WRAPPER if tree else RSS_WRAPPER
    result = subprocess.run([sys.executable, "-c", wrapper, report, *map(str, command)], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise BenchError(f"{' '.join(map(str, command))} exited {result.returncode}:\n{output[-3000:]}")
    peak = int(report.read_text()) / 1024
    report.unlink()
    return wall, peak, output


def download_to_nothing(url: str) -> int:
    """GET ``url`` and discard the body in blocks; the bytes read."""
    rest = url[len("http://"):]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    try:
        connection.request("GET", "/" + path)
        response = connection.getresponse()
        if response.status != 200:
            raise BenchError(f"GET {url} answered {response.status}")
        received = 0
        while block := response.read(1 << 20):
            received += len(block)
        return received
    finally:
        connection.close()


def prepare_models(repo: Path, env: dict, megabytes: int) -> Path:
    """``make train``'s models in ``repo``, plus the large model ``Big`` (metadata of the trained one)."""
    from tests.helpers import pipeline

    trained = pipeline(repo, env, "train", check=False)
    if trained.returncode != 0:
        raise BenchError(f"make train in the model-scale copy exited {trained.returncode}:\n{trained.stderr[-2000:]}")
    models = repo / "src" / MODULE / "models"
    big = models / BIG
    big.mkdir()
    timed_run([sys.executable, "-c", ENLARGE, models / BASE_MODEL / "model.joblib", big / "model.joblib", megabytes],
              clean_env(PYTHONPATH=f"{repo}:{repo / 'src'}"), cwd=repo, timeout=600)
    metadata = json.loads((models / BASE_MODEL / "metadata.json").read_text())
    # the enlarged pickle is no longer what the base model's ONNX copy computes: Big ships without one
    onnx = {"status": "not converted", "reason": "a benchmark model enlarged after training"}
    (big / "metadata.json").write_text(json.dumps({**metadata, "name": BIG, "onnx": onnx}, indent=2, sort_keys=True) + "\n")
    metrics = json.loads((models / "metrics.json").read_text())
    (models / "metrics.json").write_text(json.dumps({**metrics, BIG: metrics[BASE_MODEL]}, indent=2, sort_keys=True) + "\n")
    return big / "model.joblib"


def release_steps(work: Path, megabytes: int, rows: list[dict], say, memory_runs: int = 3) -> dict:
    """Sections 1-3: build and upload a package holding a ``megabytes`` MB model, the index's peak RSS,
    then the installed model's load memory."""
    from tests.helpers import VENV, copy_repo, index_env, pipeline

    base = work / "model-scale"
    base.mkdir()
    repo = copy_repo(base / "repo")
    env = index_env(base)
    env.pop("BENCH_ARGS", None)
    version = "1.1.1+titanic"
    say(f"==> a {megabytes:,} MB model: make build and make upload, their peak RSS and the index's")
    started = time.perf_counter()
    model = prepare_models(repo, env, megabytes)
    model_mb = model.stat().st_size / 2**20
    say(f"    prepared src/{MODULE}/models/{BIG}/model.joblib: {model_mb:.0f} MB ({time.perf_counter() - started:.1f} s)")
    make = ["make", "--no-print-directory", "-C", repo]
    result: dict = {"model_mb": model_mb, "version": version}
    try:
        wall, peak, _ = peak_rss_run([*make, "build", f"VENV={VENV}", f"VERSION={version}"], env, repo, base)
        wheel = repo / "dist" / f"{MODULE}-{version}-py3-none-any.whl"
        sdist = repo / "dist" / f"{MODULE}-{version}.tar.gz"
        result["build"] = {"wall_s": wall, "peak_rss_mb": peak, "wheel_mb": wheel.stat().st_size / 2**20,
                           "sdist_mb": sdist.stat().st_size / 2**20}
        say(f"    make build: {wall:.1f} s, peak RSS {peak:.0f} MB (wheel {result['build']['wheel_mb']:.0f} MB, "
            f"sdist {result['build']['sdist_mb']:.0f} MB)")
        pipeline(repo, env, "index")
        record = json.loads((Path(env["INDEX_STATE"]) / "server.json").read_text())
        pid = record["pid"]
        at_start = vm_hwm_mb(pid)
        wall, peak, _ = peak_rss_run([*make, "upload", f"VENV={VENV}", f"VERSION={version}"], env, repo, base)
        after_upload = vm_hwm_mb(pid)
        result["upload"] = {"wall_s": wall, "peak_rss_mb": peak}
        say(f"    make upload (twine, then the read-back of both files): {wall:.1f} s, peak RSS {peak:.0f} MB")
        started = time.perf_counter()
        received = download_to_nothing(f"http://{HOST}:{env['INDEX_PORT']}/packages/{wheel.name}")
        if received != wheel.stat().st_size:
            raise BenchError(f"the index served {received} bytes of {wheel.name}, built {wheel.stat().st_size}")
        after_download = vm_hwm_mb(pid)
        result["index"] = {"started_mb": at_start, "after_upload_mb": after_upload,
                           "after_download_mb": after_download, "download_s": time.perf_counter() - started}
        say(f"    index peak RSS: {at_start:.0f} MB started, {after_upload:.0f} MB after the upload, "
            f"{after_download:.0f} MB after a download of the wheel")
    finally:
        pipeline(repo, env, "index-stop", check=False)
    result["load"] = load_memory(base, wheel, rows, say, memory_runs)
    shutil.rmtree(base, ignore_errors=True)
    return result


def load_memory(base: Path, wheel: Path, rows: list[dict], say, repeats: int = 3) -> dict:
    """Peak RSS of the package's ``load()`` and ``joblib.load(path)`` on the installed model, each in a fresh process."""
    site = base / "site"
    with zipfile.ZipFile(wheel) as archive:  # a pure-Python wheel: unzipping it is installing it
        archive.extractall(site)
    path = site / MODULE / "models" / BIG / "model.joblib"
    env = clean_env(PYTHONPATH=str(site))
    say(f"==> {BIG} model load memory: {MODULE}.load() vs joblib.load(path), fresh processes (median of {repeats})")

    def peak(how: str) -> float:
        done = subprocess.run([sys.executable, "-c", LOAD, how, path, json.dumps(rows), str(site)], env=env, cwd=base,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise BenchError(f"loading the {BIG} model with {how} failed:\n{done.stderr[-2000:]}")
        return int(done.stdout.split()[-1]) / 1024

    peaks: dict[str, list[float]] = {"package": [], "joblib": []}
    for i in range(repeats):
        for how in (("package", "joblib") if i % 2 == 0 else ("joblib", "package")):
            peaks[how].append(peak(how))
    ours, raw = statistics.median(peaks["package"]), statistics.median(peaks["joblib"])
    mapped = peak("package-mmap")
    say(f"    peak RSS: {MODULE}.load() {ours:.0f} MB, joblib.load(path) {raw:.0f} MB, ratio {ours / raw:.3f}; "
        f"{MODULE}.load(mmap_mode='r') {mapped:.0f} MB")
    return {"mymodel_mb": ours, "joblib_mb": raw, "ratio": ours / raw, "mmap_mb": mapped, "repeats": repeats,
            "model_mb": path.stat().st_size / 2**20}


def resolver_bytes(work: Path, processes, htpasswd: Path, logs: Path, versions: int, wheel_mb: float, say) -> dict:
    """Section 4: what pip and uv download to resolve ``<package>>=1`` against ``versions`` big wheels."""
    from tests.helpers import VENV

    root = work / "resolver"
    say(f"==> resolver bytes: {PROJECT}>=1 against {versions} versions of {wheel_mb:g} MB wheels (PEP 658 metadata)")
    for k in range(1, versions + 1):
        synthetic.build_wheel(root, synthetic.version(k), payload_bytes=int(wheel_mb * 2**20))
    newest = synthetic.version(versions)
    wheel_bytes = (root / synthetic.wheel_name(newest)).stat().st_size
    log = work / "resolver-requests.log"
    server = start_server(processes, "ours", root, htpasswd, "update", logs, extra_env={"INDEX_REQUEST_LOG": str(log)})
    result: dict = {"versions": versions, "wheel_bytes": wheel_bytes, "resolved": newest}
    try:
        commands = {
            "pip": ([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
                     "--disable-pip-version-check", "--index-url", server.simple_url, f"{PROJECT}>=1"],
                    f"Would install {PROJECT}-{newest}"),
            "uv": ([VENV / "bin" / "uv", "pip", "compile", "--no-cache", "--python", sys.executable,
                    "--index-url", server.simple_url, work / "resolver.in"], f"{PROJECT}=={newest}"),
        }
        (work / "resolver.in").write_text(f"{PROJECT}>=1\n")
        for tool, (command, expect) in commands.items():
            log.write_text("")
            wall = timed_run(command, clean_env(UV_PYTHON_DOWNLOADS="never"), cwd=work, expect=expect)
            result[tool] = {"wall_s": wall, **served_bytes(log)}
            say(f"    {tool}: {result[tool]['wheel_bytes']:,} wheel bytes, {result[tool]['metadata_bytes']:,} "
                f"metadata bytes, {result[tool]['page_bytes']:,} page bytes ({wall:.2f} s); one wheel is "
                f"{wheel_bytes:,} bytes")
    finally:
        processes.stop(server.process)
        shutil.rmtree(root, ignore_errors=True)
    return result


def served_bytes(log: Path) -> dict:
    """The bytes the index sent, by kind, from its request log (``METHOD path status bytes type``)."""
    totals = {"wheel_bytes": 0, "metadata_bytes": 0, "page_bytes": 0, "requests": 0}
    for line in log.read_text().splitlines():
        method, path, _, size, _ = line.split(" ")
        kind = ("wheel_bytes" if path.endswith(".whl") else
                "metadata_bytes" if path.endswith(".metadata") else "page_bytes")
        totals[kind] += int(size)
        totals["requests"] += 1
    return totals


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    """This module's rows of the summary table."""
    def status(ok: bool) -> str:
        return "met" if ok else "MISSED"

    scale, rows = results["model_scale"], []
    size = f"{scale['model_mb']:,.0f} MB model"
    for step in ("build", "upload"):
        peak = scale[step]["peak_rss_mb"]
        rows.append((f"`make {step}` peak RSS, {size}", f"{peak:.0f} MB", f"< {MEMORY_TARGET_MB} MB",
                     status(peak < MEMORY_TARGET_MB)))
    index = max(scale["index"]["after_upload_mb"], scale["index"]["after_download_mb"])
    rows.append((f"index peak RSS receiving and serving the {size}", f"{index:.0f} MB", f"< {INDEX_TARGET_MB} MB",
                 status(index < INDEX_TARGET_MB)))
    load = scale["load"]
    rows.append((f"`{MODULE}.load()` / `joblib.load(path)` peak RSS, {size}", f"{load['ratio']:.3f}",
                 f"<= {LOAD_TARGET:.2f}", status(load["ratio"] <= LOAD_TARGET)))
    resolver = results["resolver"]
    wheel = max(resolver["pip"]["wheel_bytes"], resolver["uv"]["wheel_bytes"])
    rows.append((f"wheel bytes downloaded to resolve `{PROJECT}>=1` (pip, uv; {resolver['wheel_bytes'] / 2**20:.3g} MB wheels)",
                 f"{resolver['pip']['wheel_bytes']:,} / {resolver['uv']['wheel_bytes']:,}", "0 (metadata only)",
                 status(wheel == 0)))
    return rows


def render(results: dict) -> list[str]:
    """The report's sections for the large model and the resolver."""
    scale = results["model_scale"]
    build, upload, index, load = scale["build"], scale["upload"], scale["index"], scale["load"]
    lines = ["", f"## A {scale['model_mb']:,.0f} MB model: release steps after training, the index, load memory", "",
             "| step | wall (s) | peak RSS (MB) | target |", "|---|---|---|---|",
             f"| `make build VERSION={scale['version']}` (wheel {build['wheel_mb']:,.0f} MB, sdist "
             f"{build['sdist_mb']:,.0f} MB) | {build['wall_s']:.1f} | {build['peak_rss_mb']:.0f} | < {MEMORY_TARGET_MB} |",
             f"| `make upload VERSION={scale['version']}` (twine, read-back of both files) | {upload['wall_s']:.1f} | "
             f"{upload['peak_rss_mb']:.0f} | < {MEMORY_TARGET_MB} |",
             f"| index, after start-up | | {index['started_mb']:.0f} | |",
             f"| index, after receiving the upload and serving the read-back | | {index['after_upload_mb']:.0f} | "
             f"< {INDEX_TARGET_MB} |",
             f"| index, after serving the wheel once more | {index['download_s']:.1f} | {index['after_download_mb']:.0f} | "
             f"< {INDEX_TARGET_MB} |",
             "", "| load of the installed model, fresh process | peak RSS (MB) |", "|---|---|",
             f"| `joblib.load(path)` | {load['joblib_mb']:.0f} |",
             f"| `{MODULE}.load({BIG!r})` (sha256 checked first) | {load['mymodel_mb']:.0f} ({load['ratio']:.3f}x) |",
             f"| `{MODULE}.load({BIG!r}, mmap_mode='r')` | {load['mmap_mb']:.0f} |",
             "", f"The models folder is `make train`'s, plus `{BIG}`: the trained {BASE_MODEL} pipeline carrying "
             f"{scale['model_mb']:,.0f} MB of float64 weights (random, so the archives do not shrink them), with its "
             "metadata; `make build` and `make upload` run in a copy of the repository against its own embedded "
             "index. Peak RSS of a command: `getrusage(RUSAGE_CHILDREN)` after it, the largest of make, the "
             "pipeline's python and the build backend it runs; the index's: VmHWM of the server process (pid from "
             f"its server.json). Load peaks: median of {load['repeats']}, alternating, each process importing "
             f"joblib, numpy, pandas and {MODULE} and predicting once."]
    lines += ["", "`make build` writes the wheel with the project's backend (build_backend/streaming_wheel.py), "
              "which streams each file into the archive: setuptools' own writer reads a file whole and deflates it "
              "in one call, so the model, its deflated copy and zipfile's buffers were in memory at once (3,023 MB "
              "for a 1,024 MB model before the backend). The pipeline's own steps (hashing, the reproducible-sdist "
              "rewrite, the uploads and read-backs) stream too."]
    resolver = results["resolver"]
    lines += ["", "## Resolver bytes with PEP 658 core metadata", "",
              "| client | wheel bytes | metadata bytes | page bytes | requests | wall (s) |", "|---|---|---|---|---|---|"]
    labels = {"pip": f"`pip install --dry-run --ignore-installed --no-cache-dir \"{PROJECT}>=1\"`",
              "uv": f"`uv pip compile --no-cache` of `{PROJECT}>=1`"}
    for tool, label in labels.items():
        row = resolver[tool]
        lines.append(f"| {label} | {row['wheel_bytes']:,} | {row['metadata_bytes']:,} | {row['page_bytes']:,} | "
                     f"{row['requests']} | {row['wall_s']:.2f} |")
    lines += ["", f"Our index holding {resolver['versions']} versions of `{PROJECT}`, each wheel {resolver['wheel_bytes']:,} "
              f"bytes (random bytes stored uncompressed beside a real METADATA); both resolve to {resolver['resolved']}. "
              "Bytes counted by the index's request log (INDEX_REQUEST_LOG), as sent."]
    return lines
