"""Where a build comes from: git commit, dirty flag, library versions, timestamps."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess

from pipeline.config import REPO, VERSION_FILE

# The libraries every model's training_environment records, by distribution name (what the package
# requires is derived from each model's pickle: pipeline/requirements.py; training adds any other it imports).
RUNTIME_LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib")
# 1980-01-01, the earliest time a zip file can hold; used outside a git checkout.
FALLBACK_EPOCH = 315532800


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def git_commit() -> str | None:
    return _git("rev-parse", "HEAD")


def git_dirty() -> bool | None:
    """Uncommitted changes, not counting the version record a release rewrites."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  f":(exclude){VERSION_FILE.relative_to(REPO)}", ":(exclude)releases")
    return None if status is None else bool(status)


def source_date_epoch() -> int:
    """The commit time: fixed timestamps make rebuilt wheels byte-identical."""
    stamp = _git("log", "-1", "--format=%ct")
    return int(stamp) if stamp else FALLBACK_EPOCH


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in RUNTIME_LIBRARIES:
        versions[name] = importlib.metadata.version(name)
    return versions
