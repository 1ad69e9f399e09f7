"""Every default and path of the pipeline, in one place.

Precedence: command-line flag (Make variable) > environment variable >
dataset.toml > the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import model_specs
from pipeline.errors import ConfigError
from pipeline.model_specs import SEED, ModelSpec

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "mymodel"
PACKAGE_DIR = REPO / "src" / PACKAGE
MODELS_DIR = PACKAGE_DIR / "models"
VERSION_FILE = PACKAGE_DIR / "version.py"
DIST_DIR = REPO / "dist"
RELEASES_DIR = REPO / "releases"
DATASET_CONFIG = REPO / "dataset.toml"
RELEASE_LOCK = REPO / ".release.lock"

# The models when dataset.toml has no [models] tables (the committed file spells these out).
DEFAULT_MODELS = (
    ModelSpec("LogisticRegression", "LogisticRegression", {"max_iter": 1000}),
    ModelSpec("RandomForestClassifier", "RandomForestClassifier", {"n_estimators": 100, "random_state": SEED}),
    # SVC(probability=True) is deprecated since scikit-learn 1.9; calibration is its replacement.
    ModelSpec("SVC", "SVC", {"random_state": SEED}, calibrated=True),
)
MODEL_NAMES = tuple(spec.name for spec in DEFAULT_MODELS)
TITANIC_SOURCE = "openml-titanic"

INDEX_HOST = "127.0.0.1"
INDEX_PORT = 8080
INDEX_DIR = REPO / "index" / "packages"
INDEX_STATE_ROOT = REPO / "index" / ".state"
INDEX_USER = "mymodel"
INDEX_AUTH_MODES = ("update", "read")  # who needs credentials: uploads, or everything
INDEX_START_TIMEOUT = 20.0
HTTP_TIMEOUT = 30.0

TRAIN_JOBS = os.cpu_count() or 1  # threads for the cross-validation folds


def env(name: str, default: str | None = None) -> str | None:
    """A setting from the environment; an empty value counts as unset (Make passes those)."""
    value = os.environ.get(name, "")
    return value if value != "" else default


@dataclass(frozen=True)
class DatasetConfig:
    source: str
    tag: str
    target: str
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    test_size: float = 0.25
    seed: int = 0
    cv_folds: int = 5
    max_accuracy_drop: float = 0.01
    path: Path = field(default=DATASET_CONFIG)
    models: tuple[ModelSpec, ...] = DEFAULT_MODELS

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric_features + self.categorical_features


def load_dataset_config(path: Path = DATASET_CONFIG) -> DatasetConfig:
    """Read dataset.toml; a missing or malformed key is a ConfigError naming it.

    The [models] tables are checked by building each estimator (this imports
    scikit-learn), so a bad one fails here, before any data is read or trained on.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"dataset config {path} not found; restore it from git (git checkout -- {path.name})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file") from None
    data, training, release = raw.get("dataset", {}), raw.get("training", {}), raw.get("release", {})
    models = model_specs.parse(raw["models"], path) if "models" in raw else DEFAULT_MODELS
    try:
        config = DatasetConfig(
            source=str(data["source"]),
            tag=str(data["tag"]),
            target=str(data["target"]),
            numeric_features=tuple(data.get("numeric_features", ())),
            categorical_features=tuple(data.get("categorical_features", ())),
            test_size=float(training.get("test_size", 0.25)),
            seed=int(training.get("seed", 0)),
            cv_folds=int(training.get("cv_folds", 5)),
            max_accuracy_drop=float(release.get("max_accuracy_drop", 0.01)),
            path=path,
            models=models,
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: [dataset] needs the key {exc.args[0]!r}; add it") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: a value has the wrong type ({exc}); fix it") from None
    model_specs.check(config.models, config.seed, path)
    return config


@dataclass(frozen=True)
class IndexSettings:
    """Where the index is and how to reach it."""

    host: str
    port: int
    packages_dir: Path
    state_dir: Path
    auth: str  # "update" or "read"
    external_url: str | None  # INDEX_URL: an index this project does not run

    @property
    def url(self) -> str:
        return self.external_url or f"http://{self.host}:{self.port}/"

    @property
    def simple_url(self) -> str:
        return self.url.rstrip("/") + "/simple/"


def index_settings(
    port: int | str | None = None,
    packages_dir: str | Path | None = None,
    auth: str | None = None,
) -> IndexSettings:
    raw_port = port if port is not None else env("INDEX_PORT", str(INDEX_PORT))
    try:
        port_number = int(raw_port)  # type: ignore[arg-type]
        if not 0 < port_number < 65536:
            raise ValueError
    except ValueError:
        raise ConfigError(f"INDEX_PORT={raw_port!r} is not a port number; use e.g. INDEX_PORT=8081") from None
    mode = auth or env("INDEX_AUTH", "update")
    if mode not in INDEX_AUTH_MODES:
        raise ConfigError(f"INDEX_AUTH={mode!r} is not one of {', '.join(INDEX_AUTH_MODES)}; "
                          "use INDEX_AUTH=read to require credentials for downloads too")
    pkg_dir = Path(packages_dir or env("INDEX_DIR") or INDEX_DIR).resolve()
    state = Path(env("INDEX_STATE") or INDEX_STATE_ROOT / f"port-{port_number}").resolve()
    return IndexSettings(INDEX_HOST, port_number, pkg_dir, state, mode, env("INDEX_URL"))
