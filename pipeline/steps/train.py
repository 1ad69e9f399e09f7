"""Fit the model Pipelines, evaluate them on a held-out split, save them with metadata."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Collection

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.cache import Cache
from pipeline.steps import evaluation, metrics, model_specs, onnx_export, provenance, team_code
from pipeline.config import (
    CLASSIFICATION, CV_WORKERS_AFTER_S, IMPORT_NAME, REGRESSION, SERIAL_TRAINING_ROWS, SINGLE_BLAS_THREAD_ROWS,
    TRAIN_JOBS, DatasetConfig,
)
from pipeline.steps.data import Dataset, published_source
from pipeline.errors import TrainingError
# The models' files and their writing (model_files.py, without scikit-learn), named here as before.
from pipeline.steps.model_files import (  # noqa: F401
    METADATA_FILE, METRICS_FILE, MODEL_FILE, SHOWN_METRICS, TrainedModel, metrics_table, record_model_libraries, save,
    write_json,
)
from pipeline.steps import team_functions
from pipeline.steps.team_functions import module_file, one_line

CV_SCORING = {CLASSIFICATION: "accuracy", REGRESSION: "r2"}  # recorded as cv_<scoring>_mean and _std
FIT_KEY = "fit"  # metadata.json: {"function", "params", "recorded"} of a model fitted by the team's function


def estimators(config: DatasetConfig, only: Collection[str] | None = None) -> dict[str, object]:
    """The models a release ships (or those named in ``only``), by name: the [models.<Name>] tables of dataset.toml."""
    return {spec.name: spec.build(config.seed, config.numeric_features, config.categorical_features)
            for spec in config.models if only is None or spec.name in only}


def model_pipeline(spec: model_specs.ModelSpec, estimator: object, config: DatasetConfig) -> object:
    """What is fitted: a factory's estimator as it is (it takes the raw columns), any other behind the preprocessing."""
    return clone(estimator) if spec.factory else make_pipeline(estimator, config)


def make_pipeline(estimator: object, config: DatasetConfig) -> Pipeline:
    """Preprocessing inside the saved object: consumers pass raw rows. Trees get their numbers unscaled:
    a split on a threshold learns the same from any scale, and scaling in float64 before a tree that
    compares in float32 made ONNX (float32 throughout) choose other branches on a few rows."""
    scale = [] if model_specs.is_tree_model(estimator) else [("scale", StandardScaler())]
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), *scale])
    categorical = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore")),
    ])
    preprocess = ColumnTransformer([
        ("numeric", numeric, list(config.numeric_features)),
        ("categorical", categorical, list(config.categorical_features)),
    ])
    return Pipeline([("preprocess", preprocess), ("model", clone(estimator))])


def run_facts(config: DatasetConfig) -> dict:
    """What every model's metadata records of this run rather than of its fit: the libraries' versions,
    the commit, and the team's modules (training and the cache both use it)."""
    code = team_code.team_code()
    return {"training_environment": provenance.library_versions(model_specs.libraries(config.models)),
            "git": provenance.git_state(),
            **({team_code.METADATA_KEY: code} if code else {})}


def train(dataset: Dataset, config: DatasetConfig, only: Collection[str] | None = None,
          cache: Cache | None = None) -> list[TrainedModel]:
    """Fit every estimator (or the models named in ``only``) on the same split (stratified for a
    classification) and evaluate it; ``cache``: where ONNX conversions are kept (pipeline/cache.py)."""
    rows, handed = dataset.rows, [dataset]
    del dataset  # _trained lets the rows as read go once they are split: this frame must not keep them
    with blas_threads(rows):
        return _trained(handed, config, only, cache)


def blas_threads(rows: int) -> contextlib.AbstractContextManager:
    """One BLAS thread below SINGLE_BLAS_THREAD_ROWS rows: on matrices this small the BLAS's other threads
    spin more than they compute (a LogisticRegression's folds on Titanic: 0.8 s of CPU with two threads,
    0.2 s with one), and the models' bytes are the same. The choice follows the rows alone, so a rebuild
    (make verify) makes it as the release did."""
    if rows >= SINGLE_BLAS_THREAD_ROWS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _trained(handed: list[Dataset], config: DatasetConfig, only: Collection[str] | None,
             cache: Cache | None) -> list[TrainedModel]:
    dataset = handed.pop()
    specs = {spec.name: spec for spec in config.models if only is None or spec.name in only}
    for warning in model_specs.large_data_warnings(tuple(specs.values()), dataset.rows):
        print(warning, flush=True)
    recorded_data = {"tag": config.tag, "source": published_source(dataset.source), "sha256": dataset.sha256,
                     "rows": dataset.rows, "target": dataset.target}
    X_train, X_test, y_train, y_test = split(dataset, config)
    del dataset  # the split holds the rows now: the caller's frame goes unless the caller keeps it
    folding = StratifiedKFold if config.task == CLASSIFICATION else KFold
    folds = folding(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    scoring = CV_SCORING[config.task]
    schema = input_schema(X_train, config)
    facts = run_facts(config)
    environment = facts["training_environment"]
    chosen = estimators(config, specs)
    # The cross-validations run in worker processes (joblib's loky) while this process fits the final models,
    # one after another. Not on threads of one process: scikit-learn wraps the work it parallelises in
    # warnings.catch_warnings, which swaps the process's warning filters and is not thread-safe before Python
    # 3.14; fits on two threads at once left the filters empty under load, and every later fit then warned that
    # sklearn.utils.parallel.delayed should be used with its Parallel. The final models are fitted here, not
    # sent back from a worker, so their pickles are byte for byte what they always were. Same results as serial.
    # The workers start only once the final fits have taken CV_WORKERS_AFTER_S of CPU: small models' folds run
    # here, after the final fits, sooner than workers could start. From SERIAL_TRAINING_ROWS rows the
    # cross-validations run here too: a worker would hold a copy of the rows, each fit several more. A fit
    # function (fit = "<module>:<function>") is imported from the team's package in whichever process runs it.
    # Without workers (from SERIAL_TRAINING_ROWS rows, or one core) the folds run first, and the last final fit
    # takes the training rows and lets them go before its estimator fits (fit_letting_go); from SERIAL_TRAINING_ROWS
    # each fold's rows go too (cross_validated): a big release's peak was the rows held beside their
    # transformed copy and the estimator's.
    package = team_functions.PACKAGE
    train_rows = len(X_train)
    may_use_workers = train_rows < SERIAL_TRAINING_ROWS and TRAIN_JOBS > 1
    folds_letting_go = train_rows >= SERIAL_TRAINING_ROWS
    handed = [X_train]
    del X_train

    def folds_of(names):
        return (joblib.delayed(cross_validated)(specs[n], model_pipeline(specs[n], chosen[n], config), handed[0],
                                                y_train, folds, scoring, config.seed, package,
                                                letting_go=folds_letting_go) for n in names)

    workers, fits, fitting, scores = None, [], 0.0, None  # the workers' results as they come; CPU s of the final fits
    try:
        if not may_use_workers:
            scores = list(joblib.Parallel(n_jobs=1)(folds_of(chosen)))
        for number, name in enumerate(chosen, start=1):
            started = time.process_time()
            rows = handed if scores is not None and number == len(chosen) else handed[0]
            fits.append(fitted(specs[name], model_pipeline(specs[name], chosen[name], config), rows, y_train,
                               config.seed, package))
            fitting += time.process_time() - started
            if workers is None and may_use_workers and fitting >= CV_WORKERS_AFTER_S:
                workers = joblib.Parallel(n_jobs=TRAIN_JOBS, return_as="generator")(folds_of(chosen))
        if scores is None:
            scores = list(workers if workers is not None else joblib.Parallel(n_jobs=1)(folds_of(chosen)))
    except Exception:
        for _ in _ignoring_errors(workers or ()):  # let the workers finish: left running, joblib warns they were cancelled
            pass
        raise
    finally:
        if workers is not None:
            stop_workers()
    handed.clear()
    del y_train  # what the held-out scoring below adds comes on top of fewer rows
    trained = []
    scoring_started = time.perf_counter()
    scored_by_name = {name: _as_declared(specs[name], evaluation.evaluated, pipeline, X_test, y_test, config.task,
                                         config.seed, environment)
                      for name, (pipeline, _) in zip(chosen, fits)}
    print(f"figures: the numbers of {len(chosen)} models on the {len(X_test)} held-out rows in "
          f"{time.perf_counter() - scoring_started:.2f} s", flush=True)
    for (name, estimator), (pipeline, recorded), cv in zip(chosen.items(), fits, scores, strict=True):
        spec = specs[name]
        scored = scored_by_name[name]
        metadata = {
            "name": name,
            "estimator": f"{type(estimator).__module__}.{type(estimator).__name__}",
            # A factory's object may hold anything (its repr need not be stable): its table's keys say how it was made.
            "params": _jsonable(spec.resolved(config.seed) if spec.factory else estimator.get_params()),
            **({"factory": spec.factory} if spec.factory else {}),
            **({FIT_KEY: {"function": spec.fit, "params": _jsonable(spec.fit_params), "recorded": recorded}}
               if spec.fit else {}),
            "metrics": {**_as_declared(spec, evaluate, pipeline, X_test, y_test, config.task),
                        f"cv_{scoring}_mean": _round(cv.mean()), f"cv_{scoring}_std": _round(cv.std()),
                        **metrics.declared_metrics(pipeline, X_test, y_test, config.task, config.metrics, name)},
            "task": config.task,
            **({"classes": [str(c) for c in pipeline.classes_]} if config.task == CLASSIFICATION else {}),
            **({evaluation.PER_CLASS_KEY: scored[evaluation.PER_CLASS_KEY]} if evaluation.PER_CLASS_KEY in scored else {}),
            **({"target_units": config.target_units} if config.target_units is not None else {}),
            "input_schema": schema,
            "data": {**recorded_data, "split": {"test_size": config.test_size, "seed": config.seed,
                                                "train_rows": train_rows, "test_rows": len(X_test)}},
            **facts,
        }
        trained.append(TrainedModel(name, pipeline, metadata, evaluation=scored["evaluation"]))
    return with_onnx(trained, X_test, config, cache)


def fitted(spec: model_specs.ModelSpec, estimator, X, y, seed: int,
           package: str | None = None) -> tuple[object, dict | None]:
    """``estimator`` fitted on the training rows ``X``, ``y``: by ``estimator.fit``, or by the table's fit
    function (which never sees the held-out rows; imported from ``package``, the team's), with what that
    function recorded (None without one). ``X`` may come in a one-item list, handed over: emptied here, the
    rows go as soon as the fit no longer needs them (fit_letting_go)."""
    if not spec.fit:
        fit = fit_letting_go if isinstance(X, list) and not spec.factory else _fit
        return _as_declared(spec, fit, estimator, X if fit is fit_letting_go else _taken(X), y), None
    X = _taken(X)
    function = model_specs.fit_function(spec, package=package)
    where = f"[{spec.key()}] fit = {spec.fit!r}"
    fix = f"fix it in {module_file(package, spec.fit.partition(':')[0])}"
    try:
        result = function(estimator, X, y, seed=seed, **spec.fit_params)
    except Exception as exc:
        raise TrainingError(f"{where} raised {one_line(exc)}; {fix}") from None
    returned, recorded = result if isinstance(result, tuple) and len(result) == 2 else (result, {})
    if not all(callable(getattr(returned, method, None)) for method in ("fit", "predict", "get_params")):
        raise TrainingError(f"{where} returned {type(returned).__name__}, not the fitted estimator; return it "
                            "(or the estimator and a dict of facts to record); " + fix)
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(returned)
    except NotFittedError:
        raise TrainingError(f"{where} returned an estimator that is not fitted; fit it on X and y, then return it; "
                            + fix) from None
    return returned, _recorded(recorded, where, fix)


def fit_letting_go(pipeline: Pipeline, handed: list, y) -> Pipeline:
    """``pipeline.fit(X, y)`` of a Pipeline make_pipeline built, ``X`` handed over in a one-item list and let
    go once the preprocessing has transformed it: Pipeline.fit keeps its ``X`` until the last step is fitted,
    beside the transformed rows and whatever the estimator copies of them (HistGradientBoosting's early
    stopping splits off its own validation rows). The same steps fitted in the same order on the same
    rows: the fitted object is Pipeline.fit's, byte for byte (tests/unit/test_memory.py)."""
    X = handed.pop()
    pipeline.steps = list(pipeline.steps)  # as Pipeline.fit: the steps' list is the fitted object's own
    for _, transformer in pipeline.steps[:-1]:
        X = transformer.fit_transform(X, y)
    pipeline.steps[-1][1].fit(X, y)
    return pipeline


def _fit(estimator, X, y):
    return estimator.fit(X, y)


def _taken(X):
    """The rows of ``X`` (or of the one-item list handing them over, which is emptied)."""
    return X.pop() if isinstance(X, list) else X


def _recorded(facts: object, where: str, fix: str) -> dict:
    """What a fit function returned to record (``best_iteration``...): names and plain values only."""
    if not isinstance(facts, dict):
        raise TrainingError(f"{where} returned {type(facts).__name__} beside the estimator, not a dict of facts to "
                            "record (e.g. {\"best_iteration\": model.best_iteration_}); " + fix)
    plain = {}
    for key, value in facts.items():
        value = value.item() if isinstance(value, np.generic) else value
        finite = not isinstance(value, float) or math.isfinite(value)
        if not isinstance(key, str) or not (value is None or isinstance(value, (str, bool, int, float)) and finite):
            raise TrainingError(f"{where} recorded {key!r} = {value!r}: record names with a finite number, text, "
                                "true or false; " + fix)
        plain[key] = value
    return dict(sorted(plain.items()))


def cross_validated(spec: model_specs.ModelSpec, estimator, X, y, folds, scoring: str, seed: int,
                    package: str | None = None, letting_go: bool = False) -> np.ndarray:
    """The cross-validated scores on the training rows, each fold fitted as the model is (its fit function too).
    ``letting_go``: each fold's rows are let go once preprocessed and its held-out rows are taken only then
    (cross_val_score holds both through the fit); the same scores, and a failing fold stops the run."""
    if not (spec.fit or letting_go):
        return _as_declared(spec, cross_val_score, estimator, X, y, cv=folds, scoring=scoring)
    from sklearn.metrics import get_scorer

    scorer = get_scorer(scoring)
    scores = []
    for train_rows, test_rows in folds.split(X, y):
        model, _ = fitted(spec, clone(estimator), [X.iloc[train_rows]], y.iloc[train_rows], seed, package)
        scores.append(_as_declared(spec, scorer, model, X.iloc[test_rows], y.iloc[test_rows]))
    return np.array(scores)


def with_onnx(models: list[TrainedModel], X_test, config: DatasetConfig, cache: Cache | None = None) -> list[TrainedModel]:
    """Each model with its ONNX copy checked on the held-out rows, and the outcome in its metadata
    (nothing with [release] onnx = "off"); OnnxError when dataset.toml requires ONNX and one has none.
    An outcome ``cache`` holds for the same pickle, rows and settings is not converted again."""
    if config.onnx == "off":
        return models
    exported = onnx_export.exported_all({m.name: m.pipeline for m in models}, X_test, config.task,
                                        config.numeric_features, config.onnx, config.onnx_tolerance, cache=cache)
    return [dataclasses.replace(m, metadata={**m.metadata, onnx_export.METADATA_KEY: exported[m.name].record},
                                onnx=exported[m.name].model) for m in models]


def stop_workers() -> None:
    """Stop joblib's worker processes now. Left idle they live 300 s after their last task, or after this
    process is killed, holding its stdout and stderr: whoever reads the release's output to its end (a CI
    log, a test, ``make ... | tee``) waited five minutes after a release that was killed or failed."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def _ignoring_errors(results):
    """What a generator of results yields until it ends or fails."""
    try:
        yield from results
    except Exception:  # noqa: BLE001 - the caller is already raising the first error
        return


def _as_declared(spec: model_specs.ModelSpec, work, *args, **kwargs):
    """One model's fit, cross-validation or evaluation. Hyperparameters that pass the checks on load
    can still clash at fit time (oob_score = true with bootstrap = false): scikit-learn
    raises ValueError then, which is the dataset.toml table's fault (or its factory's)."""
    try:
        return work(*args, **kwargs)
    except ValueError as exc:
        # cross_val_score's "All the fits failed" ends with the fold's own error line
        reason = ([line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__])[-1]
        name = spec.name
        if spec.factory:
            raise TrainingError(f"the model {name!r} of [models.{name}] factory = {spec.factory!r} cannot be trained "
                                f"({reason}); fix the estimator its function returns "
                                f"(src/{IMPORT_NAME}/{spec.factory.partition(':')[0]}.py) or the table's keys") from None
        raise TrainingError(f"the model {name!r} cannot be trained with its [models.{name}] hyperparameters "
                            f"({reason}); fix them in dataset.toml") from None


def split(dataset: Dataset, config: DatasetConfig) -> list:
    """X_train, X_test, y_train, y_test: the split every model is trained and scored on
    (stratified by class for a classification)."""
    X, y = dataset.frame.loc[:, list(dataset.features)], dataset.frame[dataset.target]
    stratify = y if config.task == CLASSIFICATION else None
    return train_test_split(X, y, test_size=config.test_size, random_state=config.seed, stratify=stratify)


def evaluate(pipeline: Pipeline, X, y, task: str = CLASSIFICATION, only: tuple[str, ...] | None = None,
             declared: tuple[metrics.Metric, ...] = (), model: str = "") -> dict[str, float]:
    """The held-out metrics of ``task`` (or ``only`` those, which may name ``declared`` ones: the gate's)
    of the model named ``model``."""
    values = metrics.task_metrics(pipeline, X, y, task, only)
    wanted = tuple(m for m in declared if only is None or m.name in only)
    if wanted:
        values.update(metrics.declared_metrics(pipeline, X, y, task, wanted, model))
    return values


def input_schema(X, config: DatasetConfig) -> dict:
    """What a consumer must pass: columns, dtypes, categories seen, missing values allowed."""
    columns = []
    for column in X.columns:
        entry = {"name": column, "allows_missing": True}  # every column goes through an imputer
        if column in config.numeric_features:
            entry["dtype"] = "float64"
        else:
            entry["dtype"] = "category"
            entry["categories"] = sorted(str(v) for v in X[column].dropna().unique())
        columns.append(entry)
    return {"columns": columns, "unseen_categories": "ignore"}


def _round(value: float) -> float:
    return round(float(value), 6)


def _jsonable(params: dict) -> dict:
    out = {}
    for key, value in sorted(params.items()):
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = repr(value)
    return out
