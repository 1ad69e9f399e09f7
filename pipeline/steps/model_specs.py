"""The models a release ships, as dataset.toml declares them in [models.<Name>] tables.

Each table names an estimator (one of ESTIMATORS, or any scikit-learn-API class by
import path: "lightgbm.LGBMClassifier") and its hyperparameters, or a factory: a function
of a module of the package ("features:make_pipeline" is mymodel.features.make_pipeline)
returning the whole unfitted estimator. Reading a table checks its shape without
scikit-learn; ``check`` then builds every estimator (scikit-learn imported on first use)
so a bad name or value stops the run before any training, naming the key.
"""

from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.package.package_name import IMPORT_NAME
from pipeline.errors import ConfigError
from pipeline.steps import team_functions
from pipeline.steps.team_functions import is_reference, module_file, one_line, team_function

# The estimators a [models.<Name>] table may name, with their modules: the one list
# to extend. Classifiers serve task = "classification", regressors task = "regression".
ESTIMATORS = {
    "DecisionTreeClassifier": "sklearn.tree",
    "ExtraTreesClassifier": "sklearn.ensemble",
    "GradientBoostingClassifier": "sklearn.ensemble",
    "HistGradientBoostingClassifier": "sklearn.ensemble",
    "KNeighborsClassifier": "sklearn.neighbors",
    "LogisticRegression": "sklearn.linear_model",
    "RandomForestClassifier": "sklearn.ensemble",
    "SVC": "sklearn.svm",
    "DecisionTreeRegressor": "sklearn.tree",
    "ElasticNet": "sklearn.linear_model",
    "ExtraTreesRegressor": "sklearn.ensemble",
    "GradientBoostingRegressor": "sklearn.ensemble",
    "HistGradientBoostingRegressor": "sklearn.ensemble",
    "KNeighborsRegressor": "sklearn.neighbors",
    "Lasso": "sklearn.linear_model",
    "LinearRegression": "sklearn.linear_model",
    "RandomForestRegressor": "sklearn.ensemble",
    "Ridge": "sklearn.linear_model",
    "SVR": "sklearn.svm",
}
# Tree models (by their class's module): they split on thresholds, so the pipeline gives them unscaled numbers.
TREE_MODULES = ("sklearn.tree", "sklearn.ensemble._forest", "sklearn.ensemble._gb",
                "sklearn.ensemble._hist_gradient_boosting", "lightgbm", "xgboost")
# Kernel methods: training time (and memory) grows with the square of the rows.
QUADRATIC = {"SVC", "SVR"}
LARGE_DATA_ROWS = 50_000  # from here a quadratic model takes hours: warn before training
ESTIMATOR_KEY = "estimator"
FACTORY_KEY = "factory"  # "<module>:<function>" of the package, instead of an estimator
# What a factory is called with besides the table's other keys.
FACTORY_ARGUMENTS = ("numeric_features", "categorical_features", "seed")
FIT_KEY = "fit"  # "<module>:<function>" of the package, called to fit the built estimator
FIT_PREFIX = "fit_"  # in a table with fit: a key for the fit function (fit_stopping_rounds -> stopping_rounds)
FIT_ARGUMENTS = ("estimator", "X", "y", "seed")  # what a fit function is called with besides those keys
IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")  # module.Class: "lightgbm.LGBMClassifier"
BUILT_IN_LIBRARIES = ("sklearn", IMPORT_NAME)  # import-path estimators' libraries already pinned at runtime
# How close (difflib's ratio) a key the constructor takes through **kwargs may be to a named parameter
# before it counts as that parameter misspelled (n_estimator: 0.96; LightGBM's closest alias: 0.8).
MISSPELLING_CUTOFF = 0.85
CALIBRATED_KEY = "calibrated"  # wrap in CalibratedClassifierCV(ensemble=False): probabilities for any classifier
SEED = "seed"  # random_state = "seed" means the [training] seed
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")  # a folder in the package: src/mymodel/models/<Name>


@dataclass(frozen=True)
class ModelSpec:
    """One [models.<Name>] table: the model's name in the package, its estimator (a name of ESTIMATORS
    or an import path) and hyperparameters, or its factory ("module:function") and that function's keywords."""

    name: str
    estimator: str  # "" for a factory
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    calibrated: bool = False
    factory: str = ""
    fit: str = ""  # "<module>:<function>" that fits the built estimator; "" for estimator.fit(X, y)
    fit_params: dict[str, Any] = field(default_factory=dict, hash=False)  # the fit_* keys, without fit_

    def key(self, suffix: str = "") -> str:
        """How dataset.toml spells this table (or one of its keys) in messages."""
        return f"models.{self.name}" + (f".{suffix}" if suffix else "")

    @property
    def described(self) -> str:
        """What the table trains, for messages: the estimator or the factory."""
        return self.estimator or f"factory {self.factory}"

    def build(self, seed: int, numeric_features: tuple[str, ...] = (), categorical_features: tuple[str, ...] = (),
              package: str | None = None) -> Any:
        """A fresh, unfitted estimator as the table declares it (a factory's takes the raw feature columns)."""
        if self.factory:
            estimator = factory_function(self.factory, package)(
                numeric_features=list(numeric_features), categorical_features=list(categorical_features),
                seed=seed, **self.resolved(seed))
        else:
            estimator = estimator_class(self.estimator)(**self.resolved(seed))
        if self.calibrated:
            from sklearn.calibration import CalibratedClassifierCV

            estimator = CalibratedClassifierCV(estimator, ensemble=False)
        return estimator

    def resolved(self, seed: int) -> dict[str, Any]:
        """The hyperparameters with random_state = "seed" replaced by the [training] seed.

        >>> ModelSpec("Forest", "RandomForestClassifier", {"n_estimators": 300, "random_state": "seed"}).resolved(7)
        {'n_estimators': 300, 'random_state': 7}
        """
        return {k: seed if (k == "random_state" and v == SEED) else v for k, v in self.params.items()}


def estimator_class(name: str) -> type:
    """The class of an ESTIMATORS name, or of an import path ("lightgbm.LGBMClassifier")."""
    if name in ESTIMATORS:
        return getattr(importlib.import_module(ESTIMATORS[name]), name)
    module, _, class_name = name.rpartition(".")
    return getattr(importlib.import_module(module), class_name)


def factory_function(factory: str, package: str | None = None) -> Any:
    """The function "module:function" names in the package (imported as <package>.<module>, so the
    classes it pickles load from the installed package)."""
    module, _, function = factory.partition(":")
    return getattr(importlib.import_module(f"{package or team_functions.PACKAGE}.{module}"), function)


def is_tree_model(estimator: Any) -> bool:
    """Is ``estimator`` (or the classifier a CalibratedClassifierCV wraps) a tree or an ensemble of trees?

    >>> from sklearn.calibration import CalibratedClassifierCV
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from sklearn.svm import SVC
    >>> is_tree_model(RandomForestClassifier()), is_tree_model(CalibratedClassifierCV(SVC())), is_tree_model(SVC())
    (True, False, False)
    """
    inner = getattr(estimator, "estimator", None) if type(estimator).__name__ == "CalibratedClassifierCV" else None
    module = type(inner if inner is not None else estimator).__module__
    return any(module == prefix or module.startswith(prefix + ".") for prefix in TREE_MODULES)


def task_of(estimator: str) -> str:
    """The task an estimator serves: "regression" or "classification"."""
    return _task_of_instance(estimator_class(estimator)())


def _task_of_instance(estimator: Any) -> str:
    from sklearn.base import is_regressor

    return "regression" if is_regressor(estimator) else "classification"


def libraries(specs: tuple[ModelSpec, ...]) -> tuple[str, ...]:
    """The distributions of the import-path estimators' libraries (lightgbm for lightgbm.LGBMClassifier),
    besides scikit-learn: training records their versions and the build pins them at runtime."""
    import importlib.metadata

    tops = {spec.estimator.partition(".")[0] for spec in specs if spec.estimator not in ESTIMATORS and spec.estimator}
    if not tops - set(BUILT_IN_LIBRARIES):
        return ()  # reading every distribution's files takes a second: only for an import path
    by_module = importlib.metadata.packages_distributions()
    return tuple(sorted({dist for top in tops - set(BUILT_IN_LIBRARIES) for dist in by_module.get(top, ())}))


def parse(models: Any, path: Path) -> tuple[ModelSpec, ...]:
    """The [models] section of dataset.toml as ModelSpecs, in the file's order."""
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{path}: [models] declares no model; add a [models.<Name>] table with an "
                          f"estimator = one of {', '.join(ESTIMATORS)}, or delete [models] for the default models")
    return tuple(_parse_table(name, table, path) for name, table in models.items())


def _parse_table(name: str, table: Any, path: Path) -> ModelSpec:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: models.{name} must be a table ([models.{name}] with an estimator key); "
                          "see the comments in dataset.toml")
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(f"{path}: [models.{name}]: a model name is a folder in the package; "
                          "use letters, digits, '_' and '-', starting with a letter")
    params = dict(table)
    estimator = params.pop(ESTIMATOR_KEY, None)
    factory = params.pop(FACTORY_KEY, None)
    calibrated = params.pop(CALIBRATED_KEY, False)
    if not isinstance(calibrated, bool):
        raise ConfigError(f"{path}: models.{name}.calibrated = {calibrated!r} must be true or false")
    fit, fit_params = _parsed_fit(name, params, path)
    if factory is not None:
        return ModelSpec(name, "", params, calibrated, _parsed_factory(name, factory, estimator, params, path), fit,
                         fit_params)
    if estimator is None:
        raise ConfigError(f"{path}: [models.{name}] needs the key 'estimator' (the scikit-learn class); "
                          f"add estimator = one of {', '.join(ESTIMATORS)}, an import path such as "
                          '"lightgbm.LGBMClassifier", or factory = "<module>:<function>" of the package')
    if not isinstance(estimator, str) or not (estimator in ESTIMATORS or IMPORT_PATH.fullmatch(estimator)):
        raise ConfigError(f"{path}: models.{name}.estimator = {estimator!r} is not an allowed estimator; "
                          f"use one of {', '.join(ESTIMATORS)}, or a class by import path "
                          '(estimator = "lightgbm.LGBMClassifier")')
    return ModelSpec(name, estimator, params, calibrated, "", fit, fit_params)


def _parsed_fit(name: str, params: dict, path: Path) -> tuple[str, dict[str, Any]]:
    """The table's fit function and its fit_* keys (taken out of ``params``); none without fit."""
    fit = params.pop(FIT_KEY, None)
    if fit is None:
        return "", {}
    if not isinstance(fit, str) or not is_reference(fit):
        raise ConfigError(f"{path}: models.{name}.fit = {fit!r} is not \"<module>:<function>\"; name a function of "
                          f'a module of the package: fit = "training:fit" for fit in src/{IMPORT_NAME}/training.py')
    keys = {key.removeprefix(FIT_PREFIX): params.pop(key) for key in list(params) if key.startswith(FIT_PREFIX)}
    reserved = [key for key in FIT_ARGUMENTS if key in keys]
    if reserved:
        raise ConfigError(f"{path}: models.{name}.{FIT_PREFIX}{reserved[0]}: {reserved[0]} is passed to the fit "
                          "function by the pipeline; remove the key")
    return fit, keys


def _parsed_factory(name: str, factory: Any, estimator: Any, params: dict, path: Path) -> str:
    if estimator is not None:
        raise ConfigError(f"{path}: [models.{name}] has both estimator and factory; keep one (a factory "
                          "returns the whole estimator, preprocessing included)")
    if not isinstance(factory, str) or not is_reference(factory):
        raise ConfigError(f"{path}: models.{name}.factory = {factory!r} is not \"<module>:<function>\"; "
                          f'name a function of a module of the package: factory = "features:make_pipeline" '
                          f"for make_pipeline in src/{IMPORT_NAME}/features.py")
    reserved = [key for key in FACTORY_ARGUMENTS if key in params]
    if reserved:
        raise ConfigError(f"{path}: models.{name}.{reserved[0]} is passed to the factory by the pipeline "
                          "(from [dataset] and [training]); remove it from the table")
    return factory


def check(specs: tuple[ModelSpec, ...], seed: int, path: Path, task: str = "classification",
          numeric_features: tuple[str, ...] = (), categorical_features: tuple[str, ...] = (),
          package: str | None = None) -> None:
    """Build every model as training will, so a bad parameter, an estimator of the other
    task or a failing factory fails now, naming its key."""
    for spec in specs:
        if spec.factory:
            built = _checked_factory(spec, seed, numeric_features, categorical_features, package, path)
            _check_task(spec, _task_of_instance(built), task, path)
            _check_probabilities(spec, built, task, path)
        else:
            _check_estimator(spec, seed, path, task)
        if spec.fit:
            fit_function(spec, path, package)


def fit_function(spec: ModelSpec, path: Path | str = "dataset.toml", package: str | None = None) -> Any:
    """The table's fit function, checked to take the estimator, X, y, seed and the table's fit_* keys."""
    import inspect

    function_name = spec.fit.partition(":")[2]
    key = f"{path}: {spec.key(FIT_KEY)} = {spec.fit!r}"
    signature = f"{function_name}(estimator, X, y, seed" + "".join(f", {k}" for k in spec.fit_params) + ")"
    function = team_function(spec.fit, key, signature, ConfigError, package)
    try:
        inspect.signature(function).bind(None, None, None, seed=0, **spec.fit_params)
    except TypeError as exc:
        raise ConfigError(f"{key}: {function_name} cannot be called as {signature} ({exc}); define "
                          f"def {signature} in {module_file(package, spec.fit.partition(':')[0])}, or fix the "
                          f"table's {FIT_PREFIX}* keys") from None
    except ValueError:
        pass  # no signature to read (a builtin): its call says what is wrong
    return function


def _check_task(spec: ModelSpec, kind: str, task: str, path: Path) -> None:
    if kind != task:
        fitting = [name for name in ESTIMATORS if task_of(name) == task]
        key = spec.key(ESTIMATOR_KEY if spec.estimator else FACTORY_KEY)
        raise ConfigError(f"{path}: {key} = {spec.estimator or spec.factory!r} is for {kind}, but [dataset] task = "
                          f"{task!r}; use one of {', '.join(fitting)} (or set task = {kind!r})")
    if spec.calibrated and task != "classification":
        raise ConfigError(f"{path}: {spec.key(CALIBRATED_KEY)} applies to classifiers only; remove it from [{spec.key()}]")


def _check_probabilities(spec: ModelSpec, estimator: Any, task: str, path: Path) -> None:
    if task == "classification" and not hasattr(estimator, "predict_proba"):
        raise ConfigError(f"{path}: {spec.key()} ({spec.described}) gives no probabilities, which evaluation "
                          f"and {IMPORT_NAME}.predict_proba need; add calibrated = true to [{spec.key()}]")


def _check_estimator(spec: ModelSpec, seed: int, path: Path, task: str) -> None:
    from sklearn.utils._param_validation import InvalidParameterError

    cls = _imported_class(spec, path)
    _check_task(spec, task_of(spec.estimator), task, path)
    defaults = cls().get_params()
    valid = sorted(defaults)
    for key, value in spec.resolved(seed).items():
        if key not in valid and not _takes(cls, key, value, valid):
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"{path}: {spec.key(key)} is not a parameter of {spec.estimator}; "
                              f"{hint}its parameters: {', '.join(valid)}")
        if key in defaults and isinstance(value, bool) and not isinstance(defaults[key], (bool, type(None))):
            # scikit-learn takes True for an int (n_estimators = true would be 1 tree)
            raise ConfigError(f"{path}: {spec.key(key)} = {str(value).lower()} is a boolean; "
                              f"{spec.estimator} expects a value like its default {defaults[key]!r}")
        if not hasattr(cls, "_parameter_constraints"):
            continue  # a class of another library: it checks its values when it fits
        try:  # one key at a time (the others at their defaults) to name the bad one
            cls(**{key: value})._validate_params()
        except InvalidParameterError as exc:
            raise ConfigError(f"{path}: {spec.key(key)} = {value!r} is invalid ({str(exc).rstrip('.')}); fix the value") from None
    try:
        estimator = spec.build(seed)
    except Exception as exc:  # a class of another library refusing its keywords
        raise ConfigError(f"{path}: [{spec.key()}] cannot create {spec.estimator} with its hyperparameters "
                          f"({one_line(exc)}); fix them") from None
    _check_probabilities(spec, estimator, task, path)


def _takes(cls: type, key: str, value: Any, named: list[str]) -> bool:
    """Does the constructor take ``key``, which ``named`` (get_params() of a default instance) lacks?
    LightGBM, XGBoost and CatBoost take many documented parameters (``verbose``, ``verbosity``,
    ``lambda_l1``) through ``**kwargs``: get_params() of one built with them has them. LightGBM keeps
    ANY keyword that way, so a key that is a near miss of a named parameter (``n_estimator``) is a
    misspelling however the constructor takes it (MISSPELLING_CUTOFF: none of LightGBM's own
    parameter names or aliases is that close to another name); otherwise only what the constructor
    refuses (or drops) is not a parameter."""
    if difflib.get_close_matches(key, named, n=1, cutoff=MISSPELLING_CUTOFF):
        return False
    try:
        return key in cls(**{key: value}).get_params()
    except TypeError:  # an unexpected keyword argument
        return False
    except Exception:  # noqa: BLE001 - the key is taken, its value refused: building the estimator says why
        return True


def _imported_class(spec: ModelSpec, path: Path) -> type:
    """The class an estimator key names, or a ConfigError saying why it cannot be used."""
    key = f"{path}: {spec.key(ESTIMATOR_KEY)} = {spec.estimator!r}"
    module_name, _, class_name = spec.estimator.rpartition(".")
    try:
        cls = estimator_class(spec.estimator)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{key}: the module {exc.name!r} is not installed; add its distribution to the train "
                          "group of pyproject.toml ([dependency-groups]), run make requirements, then any make "
                          "target installs it") from None
    except AttributeError:
        names = [n for n in dir(importlib.import_module(module_name)) if not n.startswith("_")]
        close = difflib.get_close_matches(class_name, names, n=1)
        hint = f"did you mean {module_name}.{close[0]}? " if close else ""
        raise ConfigError(f"{key}: the module {module_name} has no {class_name}; {hint}fix the import path") from None
    except Exception as exc:  # the library itself fails to import (a missing system library, a bad install)
        raise ConfigError(f"{key}: importing {module_name} failed ({one_line(exc)}); fix or reinstall "
                          "the library (make venv)") from None
    if not isinstance(cls, type) or not _has_estimator_api(cls):
        raise ConfigError(f"{key} is not an estimator class with the scikit-learn API (fit, predict, get_params "
                          "and tags, as sklearn.base.BaseEstimator gives); name such a class")
    try:
        instance = cls()
        _task_of_instance(instance)
    except Exception as exc:
        raise ConfigError(f"{key} cannot be created with its defaults or has no scikit-learn tags "
                          f"({one_line(exc)}); name a class with the scikit-learn estimator API") from None
    return cls


def _has_estimator_api(obj: Any) -> bool:
    return all(callable(getattr(obj, method, None)) for method in ("fit", "predict", "get_params"))


def _checked_factory(spec: ModelSpec, seed: int, numeric_features: tuple[str, ...],
                     categorical_features: tuple[str, ...], package: str, path: Path) -> Any:
    """Call the factory as training will; a missing module or function, or a result that is not an
    unfitted scikit-learn estimator, is a ConfigError naming the table and the module's file."""
    from sklearn.base import clone

    function_name = spec.factory.partition(":")[2]
    key = f"{path}: {spec.key(FACTORY_KEY)} = {spec.factory!r}"
    where = module_file(package, spec.factory.partition(":")[0])
    team_function(spec.factory, key, f"{function_name}(numeric_features, categorical_features, seed, **params)",
                  ConfigError, package)
    try:
        built = spec.build(seed, numeric_features, categorical_features, package)
    except Exception as exc:
        given = ", ".join([*FACTORY_ARGUMENTS, *spec.params])
        raise ConfigError(f"{key}: calling {function_name}({given}) raised {one_line(exc)}; fix the function "
                          f"in {where} or the keys of [{spec.key()}]") from None
    try:
        if not _has_estimator_api(built):
            raise TypeError("it has no fit, predict and get_params")
        clone(built)  # training clones it for each cross-validation fold
        _task_of_instance(built)  # scikit-learn's tags say whether it is a classifier or a regressor
    except Exception as exc:
        raise ConfigError(f"{key}: {function_name} returned a {type(built).__name__}, which is not a scikit-learn "
                          f"estimator ({one_line(exc)}); return an unfitted estimator or Pipeline "
                          "that takes the raw feature columns") from None
    return built


def large_data_warnings(specs: tuple[ModelSpec, ...], rows: int) -> list[str]:
    """Models that will be slow on ``rows`` rows, with what to do about it.

    >>> print(*large_data_warnings((ModelSpec("SVC", "SVC", {}, calibrated=True),), 1_000_000))
    warning: [models.SVC] (SVC) trains in time that grows with the square of the rows; at 1,000,000 rows it may take hours: delete its table from dataset.toml, or use HistGradientBoostingClassifier or LogisticRegression
    >>> large_data_warnings((ModelSpec("SVC", "SVC", {}),), 1309)
    []
    """
    if rows < LARGE_DATA_ROWS:
        return []
    return [f"warning: [{spec.key()}] ({spec.estimator}) trains in time that grows with the square of the rows; "
            f"at {rows:,} rows it may take hours: delete its table from dataset.toml, or use "
            f"{'HistGradientBoostingRegressor or Ridge' if spec.estimator == 'SVR' else 'HistGradientBoostingClassifier or LogisticRegression'}"
            for spec in specs if spec.estimator in QUADRATIC]
