"""The index (the server) depends on nothing of the pipeline: the pipeline depends on it."""

import subprocess
import sys

from tests.helpers import REPO


def test_no_index_module_imports_the_pipeline():
    modules = sorted(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                     for path in (REPO / "index").rglob("*.py"))
    probe = ("import importlib, sys\n"
             f"for name in {modules!r}:\n"
             "    importlib.import_module(name)\n"
             "print(sorted(m for m in sys.modules if m == 'pipeline' or m.startswith('pipeline.')))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "index.control" in modules
    assert result.stdout.strip() == "[]", f"index modules imported {result.stdout.strip()}"


def test_pipeline_index_errors_are_index_errors():
    from index.errors import IndexServerError
    from pipeline.errors import PackageIndexError, PipelineError

    assert issubclass(PackageIndexError, IndexServerError) and issubclass(PackageIndexError, PipelineError)
