"""Every default and path of the pipeline, in one place.

Precedence: command-line flag (Make variable) > environment variable >
dataset.toml > the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import dataset_keys
from pipeline.steps import metrics, model_specs
from pipeline.errors import ConfigError
from pipeline.steps.model_specs import SEED, ModelSpec
from pipeline.steps.versioning import canonical_tag

# dataset.toml's keys, their defaults and allowed values (pipeline/dataset_keys.py), re-exported here.
from pipeline.dataset_keys import setting
from pipeline.dataset_keys import (  # noqa: F401
    CLASSIFICATION, DEFAULT_GATE_METRIC, DEFAULT_MAX_DROP, GATE_METRICS, LOWER_IS_BETTER, ONNX_POLICIES,
    ONNX_TOLERANCE, REGRESSION, TASKS, TITANIC_SOURCE,
)

# The index owns its defaults and settings; re-exported here, where the pipeline looks for every default.
from index.settings import (  # noqa: F401
    INDEX_AUTH_MODES, INDEX_DIR, INDEX_HOST, INDEX_KINDS, INDEX_PORT, INDEX_READ_TIMEOUT, INDEX_START_TIMEOUT,
    INDEX_STATE_ROOT, PORT_FILE,
    INDEX_READER, INDEX_USER, REPO, IndexSettings, env, install_from_replica, remembered_port,
)
# The model package's name ([package] name in dataset.toml), its import name and folder.
from pipeline.package.package_name import DATASET_CONFIG, IMPORT_NAME, PACKAGE, PACKAGE_PROBLEM  # noqa: F401

PACKAGE_DIR = REPO / "src" / IMPORT_NAME
MODELS_DIR = PACKAGE_DIR / "models"
VERSION_FILE = PACKAGE_DIR / "version.py"
DIST_DIR = REPO / "dist"
RELEASES_DIR = REPO / "releases"
RELEASE_LOCK = REPO / ".release.lock"

# The models when dataset.toml has no [models] tables, per task (the committed file spells out the first).
DEFAULT_MODELS = (
    ModelSpec("LogisticRegression", "LogisticRegression", {"max_iter": 1000}),
    ModelSpec("RandomForestClassifier", "RandomForestClassifier", {"n_estimators": 100, "random_state": SEED}),
    # SVC(probability=True) is deprecated since scikit-learn 1.9; calibration is its replacement.
    ModelSpec("SVC", "SVC", {"random_state": SEED}, calibrated=True),
)
DEFAULT_REGRESSION_MODELS = (
    ModelSpec("Ridge", "Ridge", {}),
    ModelSpec("RandomForestRegressor", "RandomForestRegressor", {"n_estimators": 100, "random_state": SEED}),
    ModelSpec("HistGradientBoostingRegressor", "HistGradientBoostingRegressor", {"random_state": SEED}),
)
DEFAULTS_BY_TASK = {CLASSIFICATION: DEFAULT_MODELS, REGRESSION: DEFAULT_REGRESSION_MODELS}
MODEL_NAMES = tuple(spec.name for spec in DEFAULT_MODELS)
# A numeric target with more distinct values than this, and no [dataset] task: most likely a regression.
MAX_CLASSES_WITHOUT_TASK = 20


# The range each runtime requirement allows around the version the models were trained with
# (pipeline/steps/requirements.py): "patch-floor" >=X.Y.Z,<X.(Y+1) (scikit-learn warns on loading a pickle
# from another version); "major" >=X.Y,<(X+1) (array and frame pickles stay readable within a major);
# any distribution not listed, e.g. a third-party estimator's, keeps to its minor series >=X.Y,<X.(Y+1).
REQUIREMENT_RANGES = {"scikit-learn": "patch-floor", "numpy": "major", "scipy": "major", "pandas": "major",
                      "joblib": "major", "onnxruntime": "major"}  # onnxruntime: the -onnx twin's (pipeline/steps/onnx_package.py)
# Needed by the package's own code for an API, whatever version the models were trained with.
REQUIREMENT_FLOORS = {"packaging": ">=22"}

# The opsets the models are converted for: fixed, so a consumer's ONNX Runtime (1.14 or later)
# runs them and a newer skl2onnx does not change the bytes by itself.
ONNX_OPSET = (("", 17), ("ai.onnx.ml", 3))

HTTP_TIMEOUT = 30.0

# The data package (pipeline/steps/data_package.py): the training data, as Parquet, published as <package>-data.
DATA_PACKAGE = f"{PACKAGE}-data"
DATA_IMPORT_NAME = f"{IMPORT_NAME}_data"
DATA_FIRST_VERSION = "1.0.0"  # then a column added, removed or retyped bumps the minor, any other change the patch
# What frame() needs to read the Parquet file back with the dtypes the models were trained from (pandas 3's
# str for text); fixed, so a data package's bytes follow its data only.
DATA_REQUIRES = ("pandas>=3", "pyarrow>=17")
DATA_JSON_LIMIT = 1 << 20  # the most read of a data wheel's metadata.json
DATA_FILE_LIMIT = 64 << 30  # the most extracted of a data wheel's file (64 GiB)

TRAIN_JOBS = os.cpu_count() or 1  # worker processes for the cross-validations (pipeline/steps/train.py)
# From this many training rows the cross-validations run in this process, after the final fits: a worker
# would hold its own copy of the rows, each fit several more (the preprocessing's, the estimator's own),
# and the estimators use every core by themselves.
SERIAL_TRAINING_ROWS = 1_000_000
# The cross-validations start worker processes only once the final fits have taken this many CPU seconds:
# the folds repeat each fit cv_folds times, and a worker costs about 1.5 CPU seconds before its first fold
# (it imports scikit-learn, pandas and the pipeline again). Below it (Titanic's three models take ~0.4 s)
# the folds run in this process, after the final fits, in less time than the workers take to start.
CV_WORKERS_AFTER_S = 1.0
# Below this many rows training runs with one BLAS thread (pipeline/steps/train.py: blas_threads).
SINGLE_BLAS_THREAD_ROWS = 100_000

# What a release keeps keyed on its inputs' sha256 (pipeline/cache.py): each model's training, its ONNX
# conversion, its evaluation numbers and its figures. RELEASE_CACHE=<folder> keeps it elsewhere (the test
# clones share one), RELEASE_CACHE=off keeps none.
RELEASE_CACHE_DIR = REPO / ".cache" / "release"
RELEASE_CACHE_ENTRIES = 500  # per kind of work; the least recently used go first
RELEASE_CACHE_BYTES = 1 << 30  # the most the stored files take (a larger model is trained every time)


def release_cache_dir() -> Path | None:
    """The release's cache folder (RELEASE_CACHE), None when it is off."""
    setting = env("RELEASE_CACHE")
    if setting is None:
        return RELEASE_CACHE_DIR
    return None if setting.lower() in ("off", "0", "no", "false") else Path(setting).resolve()


@dataclass(frozen=True)
class GateRule:
    """The metric the release gate compares and how much it may get worse."""

    metric: str = "accuracy"
    allowed: float = DEFAULT_MAX_DROP  # the largest change for the worse
    lower: bool | None = None  # a team metric's declared direction; None: the task's own metric's

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER if self.lower is None else self.lower

    @property
    def setting(self) -> str:
        """Its name in release notes: max_accuracy_drop, max_rmse_increase, ..."""
        return f"max_{self.metric}_{'increase' if self.lower_is_better else 'drop'}"

    def recorded(self) -> dict:
        """What a release's package records about its gate (the registry page charts this metric).

        >>> GateRule("rmse", 1.0).recorded()
        {'metric': 'rmse', 'lower_is_better': True, 'max_rmse_increase': 1.0}
        """
        return {"metric": self.metric, "lower_is_better": self.lower_is_better, self.setting: self.allowed}

    def worse(self, change: float) -> bool:
        """Is a change (new - published) worse than allowed?

        >>> GateRule("accuracy", 0.01).worse(-0.02), GateRule("rmse", 0.5).worse(0.2), GateRule("rmse", 0.5).worse(0.6)
        (True, False, True)
        """
        return change > self.allowed if self.lower_is_better else change < -self.allowed


@dataclass(frozen=True)
class DatasetConfig:
    source: str
    tag: str
    target: str
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    test_size: float = dataset_keys.key("training", "test_size").default
    seed: int = dataset_keys.key("training", "seed").default
    cv_folds: int = dataset_keys.key("training", "cv_folds").default
    gate: GateRule = GateRule()
    path: Path = field(default=DATASET_CONFIG)
    models: tuple[ModelSpec, ...] = DEFAULT_MODELS
    task: str = CLASSIFICATION
    task_declared: bool = False  # [dataset] task was given (else a many-valued numeric target is refused)
    target_units: str | None = None  # what a regression predicts in, for the model card
    onnx: str = ONNX_POLICIES[0]  # [release] onnx
    onnx_tolerance: float | None = None  # [release] onnx_tolerance; None: ONNX_TOLERANCE of the task
    publish_data: bool = dataset_keys.key("dataset", "publish").default  # [dataset] publish: release the data file as <package>-data (pipeline/steps/data_package.py)
    metrics: tuple[metrics.Metric, ...] = ()  # [evaluation] metrics: the team's, beside the task's own

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric_features + self.categorical_features


def load_dataset_config(path: Path = DATASET_CONFIG, tag: str | None = None, check: bool = True) -> DatasetConfig:
    """Read dataset.toml; a missing or malformed key is a ConfigError naming it.

    ``tag`` (DATA=) replaces [dataset] tag: the one data tag of a run, which training records
    in every model's metadata.json and the version carries. Either must be a canonical PEP 440
    local label (a VersionError shows the canonical form).

    The [models] tables are checked by building each estimator (this imports
    scikit-learn), so a bad one fails here, before any data is read or trained on;
    ``check=False`` leaves that to the caller (a release builds only the estimators it
    trains: pipeline/steps/train_cache.py).
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"dataset config {path} not found; restore it from git (git checkout -- {path.name})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file") from None
    data, training, release = raw.get("dataset", {}), raw.get("training", {}), raw.get("release", {})
    task = _task(data, path)
    declared = metrics.parse(raw.get("evaluation", {}), task, path)
    models = model_specs.parse(raw["models"], path) if "models" in raw else DEFAULTS_BY_TASK[task]
    units = setting(data, "dataset", "target_units", None)
    publish = setting(data, "dataset", "publish")
    if not isinstance(publish, bool):
        raise ConfigError(f"{path}: [dataset] publish = {publish!r} must be true or false")
    if units is not None and not isinstance(units, str):
        raise ConfigError(f"{path}: [dataset] target_units = {units!r} must be text, e.g. target_units = \"USD\"")
    try:
        config = DatasetConfig(
            source=str(setting(data, "dataset", "source")),
            tag=canonical_tag(tag or str(setting(data, "dataset", "tag"))),
            target=str(setting(data, "dataset", "target")),
            numeric_features=tuple(setting(data, "dataset", "numeric_features")),
            categorical_features=tuple(setting(data, "dataset", "categorical_features")),
            test_size=float(setting(training, "training", "test_size")),
            seed=int(setting(training, "training", "seed")),
            cv_folds=int(setting(training, "training", "cv_folds")),
            gate=_gate_rule(release, task, path, declared),
            path=path,
            models=models,
            task=task,
            task_declared="task" in data,
            target_units=units,
            onnx=_onnx_policy(release, path),
            onnx_tolerance=_onnx_tolerance(release, path),
            publish_data=publish,
            metrics=declared,
        )
    except KeyError as exc:
        raise ConfigError(f"{path}: [dataset] needs the key {exc.args[0]!r}; add it") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: a value has the wrong type ({exc}); fix it") from None
    if not 0 < config.test_size < 1:
        raise ConfigError(f"{path}: [training] test_size = {config.test_size!r} must be a share of the rows, above 0 "
                          "and below 1 (e.g. test_size = 0.25)")
    if config.cv_folds < 2:
        raise ConfigError(f"{path}: [training] cv_folds = {config.cv_folds!r} must be 2 or more (e.g. cv_folds = 5)")
    if check:
        check_models(config, config.models)
    return config


def check_models(config: DatasetConfig, specs: tuple[ModelSpec, ...]) -> None:
    """Build each of ``specs`` as training will: a bad table is a ConfigError naming its key."""
    model_specs.check(specs, config.seed, config.path, config.task, config.numeric_features,
                      config.categorical_features)


def _task(data: dict, path: Path) -> str:
    task = setting(data, "dataset", "task")
    if task not in TASKS:
        raise ConfigError(f"{path}: [dataset] task = {task!r} is not a task; use one of "
                          + ", ".join(f'task = "{t}"' for t in TASKS))
    return task


def _onnx_policy(release: dict, path: Path) -> str:
    policy = setting(release, "release", "onnx")
    if policy not in ONNX_POLICIES:
        raise ConfigError(f"{path}: [release] onnx = {policy!r} is not one of "
                          + ", ".join(f'"{p}"' for p in ONNX_POLICIES) + '; "required" fails a release whose '
                          "models do not all convert, \"off\" converts none")
    return policy


def _onnx_tolerance(release: dict, path: Path) -> float | None:
    tolerance = setting(release, "release", "onnx_tolerance", None)
    if tolerance is None:
        return None
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise ConfigError(f"{path}: [release] onnx_tolerance = {tolerance!r} must be a number above 0 and below 1 "
                          "(e.g. 1e-4)")
    return float(tolerance)


def _gate_rule(release: dict, task: str, path: Path, declared: tuple[metrics.Metric, ...] = ()) -> GateRule:
    """[release] gate_metric (the task's own metric or one of [evaluation] metrics) and its allowed change:
    max_drop (higher is better) or max_increase (lower is better); max_accuracy_drop is max_drop for the
    accuracy gate."""
    metric = setting(release, "release", "gate_metric", DEFAULT_GATE_METRIC[task])
    names = [*GATE_METRICS[task], *(m.name for m in declared if m.name not in GATE_METRICS[task])]
    if metric not in names:
        raise ConfigError(f"{path}: [release] gate_metric = {metric!r} is not a held-out metric of {task}; "
                          f"use one of {', '.join(names)}, or add it to [evaluation] metrics")
    lower = metrics.lower_is_better(metric, declared)
    given = {key: setting(release, "release", key) for key in ("max_drop", "max_increase", "max_accuracy_drop")
             if key in release}
    if lower:
        wanted = "max_increase"
    elif metric == "accuracy" and "max_accuracy_drop" in given:
        wanted = "max_accuracy_drop"  # the name before gate_metric existed
    else:
        wanted = "max_drop"
    wrong = [key for key in given if key != wanted]
    if wrong:
        raise ConfigError(f"{path}: [release] {wrong[0]} does not apply to gate_metric = {metric!r} "
                          f"({'lower' if lower else 'higher'} is better); use {wanted} = <allowed change>")
    if wanted not in given and lower:
        raise ConfigError(f"{path}: [release] gate_metric = {metric!r} needs max_increase = <the largest increase "
                          "allowed, in the metric's units>; add it")
    allowed = given.get(wanted, dataset_keys.key("release", "max_drop").default)
    if isinstance(allowed, bool) or not isinstance(allowed, (int, float)) or allowed < 0:
        raise ConfigError(f"{path}: [release] {wanted} = {allowed!r} must be a number of 0 or more")
    return GateRule(metric, float(allowed), lower if metric not in GATE_METRICS[task] else None)


def index_settings(
    port: int | str | None = None,
    packages_dir: str | Path | None = None,
    auth: str | None = None,
) -> IndexSettings:
    remembered = remembered_port() if port is None and env("INDEX_PORT") is None else None
    raw_port = port if port is not None else env("INDEX_PORT") or remembered or str(INDEX_PORT)
    try:
        port_number = int(raw_port)  # type: ignore[arg-type]
        if not 0 < port_number < 65536:
            raise ValueError
    except ValueError:
        if remembered is not None:
            raise ConfigError(f"{PORT_FILE} (the port of the index this clone started) holds {raw_port!r}, not a "
                              "port; delete it, or start the index again with make index INDEX_PORT=...") from None
        raise ConfigError(f"INDEX_PORT={raw_port!r} is not a port number; use e.g. INDEX_PORT=8081") from None
    mode = auth or env("INDEX_AUTH")  # None: as the running index runs
    if mode is not None and mode not in INDEX_AUTH_MODES:
        raise ConfigError(f"INDEX_AUTH={mode!r} is not one of {', '.join(INDEX_AUTH_MODES)}; "
                          "use INDEX_AUTH=read to require credentials for downloads too")
    pkg_dir = Path(packages_dir or env("INDEX_DIR") or INDEX_DIR).resolve()
    state = Path(env("INDEX_STATE") or INDEX_STATE_ROOT / f"port-{port_number}").resolve()
    kind = env("INDEX_KIND")
    if kind is not None and kind not in INDEX_KINDS:
        raise ConfigError(f"INDEX_KIND={kind!r} is not one of {', '.join(INDEX_KINDS)}; "
                          "use INDEX_KIND=devpi for a devpi-server index (INDEX_URL=http://host:port/<user>/<index>/)")
    return IndexSettings(INDEX_HOST, port_number, pkg_dir, state, mode, env("INDEX_URL"), kind, env("INDEX_READ_URL"),
                         PACKAGE)
