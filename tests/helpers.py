"""Shared helpers: real processes, a copy of the repository, clean consumer environments."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from pipeline.package.package_name import configured, import_name
from pipeline.steps.versioning import INITIAL_VERSION, version_file_text

REPO = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)  # the project venv's python: pytest runs in it
VENV = PYTHON.parent.parent
WHEELHOUSE = REPO / ".cache" / "wheelhouse"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@localhost",
                "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost"}
# lightgbm: the runtime dependency of a model named by import path (test_own_model); pyarrow: the data
# package's (its frame() reads Parquet).
RUNTIME_DEPENDENCIES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "packaging", "lightgbm", "pyarrow")
# The -onnx distribution's runtime (pipeline/steps/onnx_package.py): pip download brings its own dependencies too.
ONNX_RUNTIME_DEPENDENCIES = ("onnxruntime", "flatbuffers", "protobuf")
BUILD_DEPENDENCIES = ("setuptools",)  # what pip needs to build mymodel's sdist (pyproject.toml's build-system)
CLIENT_DEPENDENCIES = ("pip",)  # seeds a consumer venv (uv venv --seed) with a pip that has pip lock


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str | os.PathLike], *, cwd: Path | None = None, env: dict | None = None,
        check: bool = True, input: str | None = None, timeout: float = 600,
        sigint_ignored: bool = False) -> subprocess.CompletedProcess:
    """``sigint_ignored``: start the command as a shell starts a background job (SIGINT ignored)."""
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, input=input, text=True,
                            capture_output=True, timeout=timeout, preexec_fn=_ignore_sigint if sigint_ignored else None)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} exited {result.returncode}\n"
                             f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    return result


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def consumer_env(**extra: str) -> dict[str, str]:
    """pip and uv that see only the index they are given (not this machine's config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHON"))}
    # uv hard-links from its cache by default: a test that edits an installed file would edit the cache
    # (one that edits none passes UV_LINK_MODE=hardlink: a copy of scikit-learn, scipy and pandas takes seconds).
    # PIP_COMPILE=false: pip would compile every installed module (scikit-learn, scipy, pandas: thousands) to
    # bytecode, a third of an install's time, which no test reads (Python compiles what it imports).
    env.update(PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_COMPILE="false", UV_NO_CONFIG="1",
               UV_LINK_MODE="copy")
    env.update(extra)
    return env


def copy_venv(template: Path, destination: Path) -> Path:
    """A venv at ``destination`` like ``template`` (made by ``python -m venv``); returns its python.

    Hard links, as nothing edits an installed file in place (installers and Python replace
    files): ensurepip takes seconds per ``python -m venv``, a copy a fraction of one. The
    scripts of bin/ name their venv, so they are copied with the new path in them.
    """
    shutil.copytree(template, destination, symlinks=True, copy_function=os.link,
                    ignore=lambda folder, names: names if Path(folder) == template / "bin" else ())
    (destination / "bin").mkdir(exist_ok=True)
    for script in (template / "bin").iterdir():
        target = destination / "bin" / script.name
        if script.is_symlink():
            target.symlink_to(os.readlink(script))
        else:
            target.write_bytes(script.read_bytes().replace(bytes(template), bytes(destination)))
            shutil.copymode(script, target)
    return destination / "bin" / "python"


def ensure_wheelhouse() -> Path:
    """The consumers' runtime and build dependencies as wheels, so a test index can serve them (fetched once)."""
    listed = " ".join(RUNTIME_DEPENDENCIES + ONNX_RUNTIME_DEPENDENCIES + BUILD_DEPENDENCIES + CLIENT_DEPENDENCIES)
    marker = WHEELHOUSE / f".complete-{hashlib.sha256(listed.encode()).hexdigest()[:12]}"  # fetched again when the list grows
    if not marker.exists():
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        run([PYTHON, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary", ":all:",
             "-c", REPO / "requirements.lock", "-d", WHEELHOUSE, *RUNTIME_DEPENDENCIES, *ONNX_RUNTIME_DEPENDENCIES,
             *BUILD_DEPENDENCIES, *CLIENT_DEPENDENCIES])
        marker.touch()
    return WHEELHOUSE


def fill_index(packages_dir: Path) -> None:
    """Put the runtime dependencies on a test index (hard links: no copying)."""
    packages_dir.mkdir(parents=True, exist_ok=True)
    for wheel in ensure_wheelhouse().glob("*.whl"):
        target = packages_dir / wheel.name
        if not target.exists():
            try:
                os.link(wheel, target)
            except OSError:
                shutil.copy2(wheel, target)


def copy_repo(destination: Path, source: Path = REPO) -> Path:
    """The repository's files (tracked and not ignored) in a fresh git repository, with the
    release record reset to a clone that never released.

    A team's clone commits its releases (``src/<package>/version.py``, ``releases/``): the
    copies start from the same defined state whatever this clone has released, so the
    tests' expected versions (1.1.1+titanic first) hold in any clone. Ignored files
    (``dist/``, ``index/packages/``, trained models, the venv) are never copied.
    """
    package = configured(source / "dataset.toml")
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=source).stdout
    for name in filter(None, listed.split("\0")):
        origin = source / name
        if origin.is_file() and not _release_record(name, package):
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
    (destination / "src" / import_name(package) / "version.py").write_text(version_file_text(INITIAL_VERSION))
    run(["git", "init", "-q", "-b", "main"], cwd=destination)
    commit(destination, "copy", GIT_AUTHOR_DATE="2026-01-01T00:00:00Z", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    return destination


def commit(repo: Path, message: str, **dates: str) -> None:
    """Commit everything in ``repo`` (a test clone) as a test identity."""
    run(["git", "add", "-A"], cwd=repo)
    run(["git", "commit", "-qm", message], cwd=repo, env={**os.environ, **GIT_IDENTITY, **dates})


def edit_config(repo: Path, old: str, new: str, committed: bool = True) -> None:
    """Replace the first ``old`` in the clone's dataset.toml (which must hold it), and commit."""
    config = repo / "dataset.toml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    if committed:  # the tracked files only, as a team commits a config change
        run(["git", "commit", "-qam", f"dataset.toml: {new}"], cwd=repo, env={**os.environ, **GIT_IDENTITY})


def train_quickly(repo: Path) -> None:
    """For tests of the release's steps, not of its models: a 10-tree forest and no SVC (committed)
    train in a fraction of the time of dataset.toml's three models."""
    edit_config(repo, "n_estimators = 100", "n_estimators = 10")
    edit_config(repo, '[models.SVC]\nestimator = "SVC"\ncalibrated = true\nrandom_state = "seed"\n', "")


def _release_record(name: str, package: str) -> bool:
    """A file a release of ``package`` writes into the clone: the version record and the release locks."""
    return name == f"src/{import_name(package)}/version.py" or \
        (name.startswith(f"releases/{package}-") and name.endswith(".txt"))


def index_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a pipeline run against a private test index on a free port."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BUMP", "DATA", "DATA_FILE", "FORCE", "VERSION", "INDEX_URL", "INDEX_AUTH", "MAKEFLAGS")}
    env.update(INDEX_PORT=str(free_port()), INDEX_DIR=str(tmp / "packages"), INDEX_STATE=str(tmp / "state"),
               INDEX_FALLBACK="off", RELEASE_LOCK_TIMEOUT="600")
    env.update(extra)
    return env


def make(repo: Path, target: str, env: dict[str, str], *args: str, check: bool = True,
         timeout: float = 900, sigint_ignored: bool = False) -> subprocess.CompletedProcess:
    return run(["make", "--no-print-directory", "-C", repo, target, f"VENV={VENV}", *args],
               env=env, check=check, timeout=timeout, sigint_ignored=sigint_ignored)


def pipeline(repo: Path, env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([PYTHON, "-m", "pipeline", *args], cwd=repo, env=env, check=check)


def index_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['INDEX_PORT']}/"


def assert_clean_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A failure that explains itself: non-zero exit, one Error: line, no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert "Error:" in output, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"


def multipart_form(fields: dict[str, str], file: tuple[str, bytes] | None = None) -> tuple[str, bytes]:
    """A multipart/form-data body (no size limit in the index's form parser, unlike a URL-encoded one's
    100 kB): (its Content-Type, its body); ``file``: the ``content`` field's (file name, bytes)."""
    boundary = "mymodel-" + os.urandom(8).hex()
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                    for name, value in fields.items())
    if file is not None:
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{file[0]}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + file[1] + b"\r\n"
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def upload_form(filename: str, content: bytes) -> tuple[str, bytes]:
    """The upload form twine sends: (its Content-Type, its body)."""
    return multipart_form({":action": "file_upload", "name": "mymodel", "version": filename.split("-")[1]},
                          (filename, content))
