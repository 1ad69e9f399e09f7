"""Plugins of every pytest run in this repository (make unit, make integration)."""

import os
import shutil
import tempfile

pytest_plugins = ("tests.reaper", "tests.run_groups")

_SHARED_CACHE = "MYMODEL_TEST_SHARED_CACHE"  # "<pid>:<folder>": the folder the run of that pid made, and removes


def pytest_configure(config):
    """The test clones' releases share one cache (pipeline/cache.py) for the run: a model with the same inputs
    is trained once per run, not once per clone (tests/run_groups.py gives all its groups one)."""
    if "RELEASE_CACHE" not in os.environ:
        os.environ["RELEASE_CACHE"] = tempfile.mkdtemp(prefix="mymodel-test-cache-")
        os.environ[_SHARED_CACHE] = f"{os.getpid()}:{os.environ['RELEASE_CACHE']}"


def pytest_unconfigure(config):
    owner, _, made = os.environ.get(_SHARED_CACHE, "").partition(":")
    if owner == str(os.getpid()):  # not a process that inherited it (a pytest-xdist worker, a nested run)
        del os.environ[_SHARED_CACHE], os.environ["RELEASE_CACHE"]
        shutil.rmtree(made, ignore_errors=True)
