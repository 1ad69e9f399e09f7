"""make bench checks the free space of its folder first: full half-way through, the index answered the
1,024 MB model's upload with HTTP 500 after twelve minutes of measurements."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from benchmarks.run import DISK_MARGIN_MB, MODEL_DISK_FACTOR, space_needed_mb
from tests.helpers import REPO


def test_the_space_needed_counts_the_synthetic_project_and_the_large_models_build_and_upload():
    args = argparse.Namespace(versions=100, size_mb=20.0, small_size_mb=2.0, model_mb=1024)
    assert space_needed_mb(args) == 100 * 2 * 22.0 + MODEL_DISK_FACTOR * 1024 + DISK_MARGIN_MB


def test_a_bench_that_would_fill_its_disk_stops_before_it_starts_saying_what_to_do(tmp_path):
    free_mb = shutil.disk_usage(tmp_path).free / 2**20
    model_mb = int(free_mb / MODEL_DISK_FACTOR) + 1  # one MB past what the folder's disk holds
    result = subprocess.run([sys.executable, "-m", "benchmarks.run", "--workdir", str(tmp_path), "--model-mb",
                             str(model_mb)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert f"Error: make bench needs about" in result.stdout and f"free in {tmp_path}" in result.stdout
    assert '--workdir <folder>' in result.stdout and "--model-mb" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing started, no bench folder made
