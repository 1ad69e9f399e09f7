"""Model scale: a large model is checked and loaded in the memory joblib itself needs.

Peak memory is each child process's own high-water mark (VmHWM), so the figures
compared are those of one load each, not the largest of several children.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from pipeline.build import PACKAGE_SOURCES
from pipeline.config import PACKAGE_DIR
from tests.helpers import PYTHON, consumer_env, run

pytestmark = pytest.mark.integration
MODEL_MB = 200
BIG = "Big"
LOAD_TARGET = 1.10  # mymodel.load() peaks within 10% of joblib.load(path)


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
