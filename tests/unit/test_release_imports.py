"""What ``make release`` imports before it knows there is work: every release pays for it, the one that finds
nothing to do (< 2 s) included."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO

HEAVY = ("pypiserver", "passlib", "sklearn", "scipy", "pandas", "matplotlib", "skl2onnx", "onnxruntime")
LOADED = f"""
import json, sys
import pipeline.__main__, pipeline.commands.release
print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))
"""


def test_the_release_command_imports_no_server_and_no_training_library_up_front():
    """Before: pipeline/indexes/devpi.py's import of index.uploads imported pypiserver's package, its config
    and passlib (~0.1 s of CPU in every release) for owned() alone."""
    loaded = subprocess.run([sys.executable, "-c", LOADED], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == []


READ_TITANIC = """
import json, sys
from pipeline.steps import sources
frame = sources._read_titanic()
print(json.dumps([len(frame), sorted(name for name in sys.modules if name.startswith("sklearn.datasets"))]))
"""


def test_reading_the_offline_titanic_copy_imports_no_dataset_module_of_scikit_learn():
    """Before: importlib.resources.files() on the copy's package imported sklearn.datasets, which imports every
    dataset module it has (a tenth of a second of a changed model's release)."""
    read = subprocess.run([sys.executable, "-c", READ_TITANIC], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(read.stdout) == [1309, []]
