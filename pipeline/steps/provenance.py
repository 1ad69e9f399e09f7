"""Where a build comes from: git commit, dirty flag, library versions, timestamps."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

from pipeline.config import REPO, VERSION_FILE

# The libraries every model's training_environment records, by distribution name (what the package
# requires is derived from each model's pickle: pipeline/steps/requirements.py; training adds any other it imports).
RUNTIME_LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib")
# 1980-01-01, the earliest time a zip file can hold; used outside a git checkout.
FALLBACK_EPOCH = 315532800


def git_output(*args: str, cwd: Path = REPO) -> str | None:
    """What git prints (stripped), or None when git is missing, fails or is not a repository here."""
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None
    return result.stdout.strip()


def git_commit() -> str | None:
    return git_output("rev-parse", "HEAD")


def git_dirty() -> bool | None:
    """Uncommitted changes, not counting the version record a release rewrites."""
    status = git_output("status", "--porcelain", "--untracked-files=no", "--", ".",
                  f":(exclude){VERSION_FILE.relative_to(REPO)}", ":(exclude)releases")
    return None if status is None else bool(status)


def git_state() -> dict:
    """What a model's metadata records of the checkout it was trained in."""
    return {"commit": git_commit(), "dirty": git_dirty()}


def source_date_epoch() -> int:
    """The commit time: fixed timestamps make rebuilt wheels byte-identical."""
    stamp = git_output("log", "-1", "--format=%ct")
    return int(stamp) if stamp else FALLBACK_EPOCH


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Python's and the runtime libraries' versions, and those of ``extra`` distributions (an
    import-path estimator's library, e.g. lightgbm)."""
    versions = {"python": platform.python_version()}
    for name in (*RUNTIME_LIBRARIES, *extra):
        versions[name] = importlib.metadata.version(name)
    return versions
