"""Plugins of every pytest run in this repository (make unit, make integration)."""

import os
import shutil
import tempfile

pytest_plugins = ("tests.reaper", "tests.run_groups")

_SHARED_CACHE = "MYMODEL_TEST_SHARED_CACHE"  # the folder this run made (and removes), if it made one


def pytest_configure(config):
    """The test clones' releases share one cache (pipeline/cache.py) for the run: a model with the same inputs
    is trained once per run, not once per clone (tests/run_groups.py gives all its groups one)."""
    if "RELEASE_CACHE" not in os.environ:
        os.environ["RELEASE_CACHE"] = os.environ[_SHARED_CACHE] = tempfile.mkdtemp(prefix="mymodel-test-cache-")


def pytest_unconfigure(config):
    made = os.environ.pop(_SHARED_CACHE, None)
    if made and os.environ.get("RELEASE_CACHE") == made:
        del os.environ["RELEASE_CACHE"]
        shutil.rmtree(made, ignore_errors=True)
