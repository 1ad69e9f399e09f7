"""The build backend run in-process on a staged package folder, shared by the model package's build
(pipeline/steps/build.py) and its -onnx twin's (pipeline/steps/onnx_package.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipeline.errors import BuildError

BUILD_UMASK = 0o022


def run_backend(stage: Path, out_dir: Path, epoch: int, version: str, kinds: tuple[str, ...] = ("sdist", "wheel")) -> None:
    """pypa/build's API without isolation (what ``python -m build --no-isolation --sdist
    --wheel`` runs), in-process to spare a Python start-up; the backend output is kept quiet."""
    import build as pypa_build

    def runner(cmd, cwd=None, extra_environ=None):
        # pyproject_hooks' quiet runner, with a fixed umask in the backend's process only: setuptools writes
        # WHEEL, entry_points.txt and top_level.txt with the umask's modes, and a fixed one keeps the wheel's
        # bytes the same for every user; the release's own umask is left alone (builds may run side by side).
        environ = {**os.environ, **(extra_environ or {}), "SOURCE_DATE_EPOCH": str(epoch)}
        subprocess.run(cmd, cwd=cwd, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True,
                       umask=BUILD_UMASK)

    try:
        builder = pypa_build.ProjectBuilder(stage, runner=runner)
        for kind in kinds:
            builder.build(kind, out_dir)
    except pypa_build.BuildBackendException as exc:
        output = getattr(exc.exception, "output", b"") or b""
        tail = " | ".join(output.decode(errors="replace").strip().splitlines()[-3:])
        raise BuildError(f"the build backend failed for {version}: {tail or exc}; "
                         "run python -m build --no-isolation in a copy of the package to see why") from None
    except pypa_build.BuildException as exc:
        raise BuildError(f"cannot build {version}: {exc}") from None


def normalise_modes(stage: Path) -> None:
    for path in stage.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
