"""Model scale: a large model is checked and loaded in the memory joblib itself needs.

Peak memory is each child process's own high-water mark (VmHWM), so the figures
compared are those of one load each, not the largest of several children.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from pipeline.steps.build import PACKAGE_SOURCES
from pipeline.config import PACKAGE_DIR
from tests.helpers import PYTHON, REPO, consumer_env, copy_repo, index_env, pipeline, run
from tests.registry_wheels import model_metadata

pytestmark = pytest.mark.integration
MODEL_MB = 200
BIG = "Big"
LOAD_TARGET = 1.10  # mymodel.load() peaks within 10% of joblib.load(path)
PIPELINE_MB = 160  # one large file through the pipeline's hashing, sdist rewrite and downloads
STREAMING_MB = 40  # what a streaming step may add to its process's peak for it (blocks, buffers)
HWM = "[int(l.split()[1]) // 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]"


def _record_line(path: Path, relative: str) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    return f"{relative},sha256={digest},{path.stat().st_size}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder laid out like site-packages after installing a wheel whose one model is ~200 MB."""
    site = tmp_path_factory.mktemp("site")
    package = site / "mymodel"
    (package / "models" / BIG).mkdir(parents=True)
    for name in PACKAGE_SOURCES:
        shutil.copy2(PACKAGE_DIR / name, package / name)
    (package / "version.py").write_text('__version__ = "1.0.0+scale"\n')
    model = package / "models" / BIG / "model.joblib"
    run([PYTHON, "-c", "import joblib, numpy, sys\n"
                       f"joblib.dump({{'weights': numpy.arange({MODEL_MB} * 2**17, dtype='float64')}}, sys.argv[1])",
         model])
    (package / "models" / BIG / "metadata.json").write_text(json.dumps({"estimator": "dict"}))
    files = {f"{BIG}/{f}": hashlib.sha256((package / "models" / BIG / f).read_bytes()).hexdigest()
             for f in ("model.joblib", "metadata.json")}
    manifest = package / "models" / "manifest.json"
    manifest.write_text(json.dumps({"version": "1.0.0+scale", "requires": {}, "release": {}, "files": files}))
    dist_info = site / "mymodel-1.0.0+scale.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: mymodel\nVersion: 1.0.0+scale\n")
    (dist_info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    record = [_record_line(package / "__init__.py", "mymodel/__init__.py"),
              _record_line(manifest, "mymodel/models/manifest.json"), "mymodel-1.0.0+scale.dist-info/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")
    return site


def peak_rss_mb(site: Path, code: str) -> float:
    """Run ``code`` in a fresh interpreter that imports mymodel from ``site``; its peak RSS in MB."""
    report = "\nprint([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"
    result = run([PYTHON, "-c", "import joblib, numpy, mymodel\n" + code + report],
                 env=consumer_env(PYTHONPATH=str(site)), cwd=site)
    return int(result.stdout.split()[-1]) / 1024


def test_load_of_a_large_model_peaks_within_ten_percent_of_joblib(site):
    model = site / "mymodel" / "models" / BIG / "model.joblib"
    checked = (f"assert mymodel.store.installed_distribution() is not None\n"
               f"m = mymodel.load({BIG!r}, check_environment=False)\n"
               f"assert m['weights'][-1] == {MODEL_MB} * 2**17 - 1")
    ours = peak_rss_mb(site, checked)
    joblib_alone = peak_rss_mb(site, f"m = joblib.load({str(model)!r})")
    assert joblib_alone > MODEL_MB  # the model really is in memory once
    assert ours <= joblib_alone * LOAD_TARGET, f"mymodel.load() peaked at {ours:.0f} MB, joblib.load at {joblib_alone:.0f} MB"


def test_a_memory_mapped_load_keeps_the_arrays_on_disk(site):
    mapped = peak_rss_mb(site, f"m = mymodel.load({BIG!r}, check_environment=False, mmap_mode='r')\n"
                               "assert isinstance(m['weights'], numpy.memmap)\n"
                               "assert m['weights'][12345] == 12345")
    assert mapped < MODEL_MB / 2, f"a memory-mapped load peaked at {mapped:.0f} MB"


def test_a_large_model_changed_on_disk_is_refused_before_unpickling(site, tmp_path):
    model = site / "mymodel" / "models" / BIG / "model.joblib"
    original = tmp_path / "original.joblib"
    shutil.copy2(model, original)
    try:
        with model.open("r+b") as stream:  # one byte of the array's data, far from the pickle's header
            stream.seek(-1000, 2)
            stream.write(b"\x01")
        refused = run([PYTHON, "-c", f"import mymodel; mymodel.load({BIG!r}, check_environment=False)"],
                      env=consumer_env(PYTHONPATH=str(site)), cwd=site, check=False)
        assert refused.returncode != 0 and "IntegrityError" in refused.stderr
        assert "Big/model.joblib has sha256" in refused.stderr and "the build recorded" in refused.stderr
    finally:
        shutil.move(original, model)


def write_blocks(handle, megabytes: int) -> None:
    block = bytes(range(256)) * 4096  # 1 MB that compresses well: the test times the I/O, not zlib
    for _ in range(megabytes):
        handle.write(block)


def pipeline_peak_growth_mb(code: str, env: dict[str, str] | None = None) -> int:
    """How far ``code`` raised a fresh interpreter's peak RSS above its peak after the imports."""
    setup = ("import pipeline.steps.build, pipeline.steps.gate, pipeline.indexes.connect, pipeline.indexes.base\n"
             "from pathlib import Path\n"
             f"before = {HWM}\n")
    result = run([PYTHON, "-c", setup + code + f"\nprint({HWM} - before)"],
                 env={**(env or consumer_env()), "PYTHONPATH": f"{REPO}:{REPO / 'src'}"}, cwd=REPO)
    return int(result.stdout.split()[-1])


def test_the_build_hash_and_sdist_rewrite_stream_a_large_model(tmp_path):
    root = tmp_path / "mymodel-1.0.0"
    (root / "models").mkdir(parents=True)
    with open(root / "models" / "model.joblib", "wb") as big:
        write_blocks(big, PIPELINE_MB)
    (root / "PKG-INFO").write_text("Name: mymodel\n")
    sdist = tmp_path / "mymodel-1.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz", compresslevel=1) as tar:
        tar.add(root, arcname=root.name)
    model = root / "models" / "model.joblib"
    growth = pipeline_peak_growth_mb(
        f"digest = pipeline.steps.build.sha256_file(Path({str(model)!r}))\n"
        f"pipeline.steps.build.reproducible_sdist(Path({str(sdist)!r}), 1700000000)")
    assert growth < STREAMING_MB, f"hashing and rewriting a {PIPELINE_MB} MB model raised the peak by {growth} MB"
    with tarfile.open(sdist) as rewritten:
        assert [m.name for m in rewritten.getmembers()] == sorted(m.name for m in rewritten.getmembers())
        member = rewritten.getmember("mymodel-1.0.0/models/model.joblib")
        assert member.size == PIPELINE_MB << 20 and member.mtime == 1700000000 and member.uid == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mymodel-1.0.0", "mymodel-1.0.0.tar.gz"]  # no leftovers


def test_downloads_and_the_published_wheel_stream_to_disk(tmp_path):
    env = index_env(tmp_path)
    packages = Path(env["INDEX_DIR"])
    packages.mkdir()
    with zipfile.ZipFile(packages / "mymodel-1.0.0+scale-py3-none-any.whl", "w") as wheel:
        wheel.writestr("mymodel/models/manifest.json", '{"files": {}}')
        with wheel.open("mymodel/models/Big/model.joblib", "w", force_zip64=True) as big:
            write_blocks(big, PIPELINE_MB)
    pipeline(REPO, env, "index")
    try:
        growth = pipeline_peak_growth_mb(
            "client = pipeline.indexes.connect.index_client(pipeline.config.index_settings())\n"
            "(served,) = client.files()\n"
            "assert client.download_sha256(served) == served.sha256\n"
            "wheel = pipeline.steps.gate.published_wheel(client, '1.0.0+scale')\n"
            "assert pipeline.views.registry.wheel_json(wheel, '1.0.0+scale') == ({'files': {}}, {})\n"
            f"assert wheel.getinfo('mymodel/models/Big/model.joblib').file_size == {PIPELINE_MB << 20}",
            env=env)
    finally:
        pipeline(REPO, env, "index-stop", check=False)
    assert growth < STREAMING_MB, f"downloading a {PIPELINE_MB} MB wheel twice raised the peak by {growth} MB"


def build_peak_mb(repo: Path, models: Path, out: Path) -> int:
    """Build a package of ``models`` with ``repo``'s pipeline; the build backend's peak RSS."""
    code = ("import resource\nfrom pathlib import Path\nimport pipeline.steps.build\n"
            f"pipeline.steps.build.build('1.0.0+scale', Path({str(out)!r}), Path({str(models)!r}))\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")
    result = run([PYTHON, "-c", code], env={**consumer_env(), "PYTHONPATH": f"{repo}:{repo / 'src'}"}, cwd=repo)
    return int(result.stdout.split()[-1])


def test_the_wheel_streams_a_large_model_into_the_bytes_setuptools_writes(tmp_path):
    """setuptools' own wheel writer reads each file whole and compresses it in one call;
    the project's backend streams it, into the same archive."""
    models = tmp_path / "models"
    (models / BIG).mkdir(parents=True)
    weights = tmp_path / "weights.bin"
    with open(weights, "wb") as big:
        for _ in range(PIPELINE_MB):  # incompressible, as model weights are: zlib's output is as big again
            big.write(os.urandom(1 << 20))
    # A real joblib file (the build scans its pickle for the libraries it needs), streamed from the memory map.
    run([PYTHON, "-c", "import joblib, numpy, sys\n"
                       "joblib.dump({'weights': numpy.memmap(sys.argv[1], dtype='uint8', mode='r')}, sys.argv[2])",
         str(weights), str(models / BIG / "model.joblib")])
    weights.unlink()
    metadata = model_metadata(BIG, 0.8)
    metadata["training_environment"].update(numpy="2.4.6", scipy="1.17.1", pandas="3.1.1", joblib="1.6.0")
    metadata["metrics"].update(log_loss=0.45, cv_accuracy_mean=0.8, cv_accuracy_std=0.02)
    (models / BIG / "metadata.json").write_text(json.dumps(metadata))
    (models / "metrics.json").write_text(json.dumps({BIG: metadata["metrics"]}))
    repo = copy_repo(tmp_path / "repo")
    ours_peak = build_peak_mb(repo, models, tmp_path / "ours")
    pyproject = (repo / "pyproject.toml").read_text()  # then setuptools' own backend, at the same commit
    assert 'build-backend = "streaming_wheel"' in pyproject
    (repo / "pyproject.toml").write_text(pyproject.replace('build-backend = "streaming_wheel"', 'build-backend = '
                                                           '"setuptools.build_meta"').replace("backend-path", "# "))
    stock_peak = build_peak_mb(repo, models, tmp_path / "stock-dist")
    wheel = "mymodel-1.0.0+scale-py3-none-any.whl"
    assert (tmp_path / "ours" / wheel).read_bytes() == (tmp_path / "stock-dist" / wheel).read_bytes()
    assert stock_peak - ours_peak > PIPELINE_MB, (ours_peak, stock_peak)  # the whole file no longer in memory
