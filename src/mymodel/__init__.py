"""Trained models shipped as a package.

    >>> import mymodel
    >>> mymodel.list_models()                       # doctest: +SKIP
    ['LogisticRegression', 'RandomForestClassifier', 'SVC']
    >>> mymodel.predict("SVC", {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0,
    ...                         "parch": 0, "fare": 211.3, "embarked": "S"})  # doctest: +SKIP

Reading metadata imports neither scikit-learn nor joblib; ``load`` checks the
installed libraries and the file's sha256 before it unpickles anything.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from . import store
from .errors import (
    EnvironmentMismatchError,
    IntegrityError,
    MymodelError,
    SchemaError,
    UnknownModelError,
)
from .version import __version__

__all__ = [
    "__version__", "list_models", "metadata", "load", "predict",
    "MymodelError", "UnknownModelError", "IntegrityError", "EnvironmentMismatchError", "SchemaError",
]


def list_models() -> list[str]:
    """The names of the packaged models."""
    return store.list_models()


def metadata(name: str | None = None) -> dict[str, Any]:
    """One model's metadata, or (without a name) the whole package's."""
    manifest = store.manifest()
    common = {"package_version": __version__, "data_tag": manifest.get("data_tag"),
              "release": manifest.get("release", {})}
    if name is not None:
        return {**store.model_metadata(name), **common}
    return {**common, "requires": manifest.get("requires", {}),
            "models": {model: store.model_metadata(model) for model in list_models()}}


def load(name: str, *, check_environment: bool = True, mmap_mode: str | None = None):
    """The fitted scikit-learn Pipeline ``name``: integrity and environment checked first.

    The file is hashed in blocks and unpickled from disk, so peak memory is what
    ``joblib.load(path)`` needs. ``mmap_mode="r"`` memory-maps large numpy arrays
    (only in files saved without compression; joblib ignores it otherwise).
    """
    store.check_name(name)
    if check_environment:
        from .environment import require_compatible

        require_compatible()
    with store.opened_verified(f"{name}/{store.MODEL_FILE}") as stream:
        import joblib  # only now: metadata readers never pay for scikit-learn

        if mmap_mode is None:
            return joblib.load(stream)
        return joblib.load(_same_file(stream), mmap_mode=mmap_mode)


def _same_file(stream) -> str:
    """A path to the inode ``stream`` has open: joblib maps arrays by path, never from a file object.

    On Linux /proc/self/fd/N reopens the checked inode even if the file was replaced since; elsewhere
    the path is all there is, and a file swapped between the check and the mapping would be read.
    """
    by_descriptor = f"/proc/self/fd/{stream.fileno()}"
    return by_descriptor if os.path.exists(by_descriptor) else stream.name


@functools.cache
def _cached(name: str, check_environment: bool):
    return load(name, check_environment=check_environment)


def predict(name: str, rows: Any, *, check_environment: bool = True):
    """Predictions for raw rows: a DataFrame, a dict or a list of dicts.

    Returns a DataFrame with a ``prediction`` column: a classifier's label, followed by one
    ``probability_<class>`` column per class; a regressor's number (float), alone.
    """
    from .contract import task_of
    from .schema import to_frame

    meta = store.model_metadata(store.check_name(name))
    frame = to_frame(rows, meta["input_schema"])
    model = _cached(name, check_environment)
    result = frame.iloc[:, :0].copy()
    if task_of(meta) == "regression":
        result["prediction"] = model.predict(frame).astype("float64")
        return result.reset_index(drop=True)
    result["prediction"] = model.predict(frame)
    if hasattr(model, "predict_proba"):
        probabilities = model.predict_proba(frame)
        for position, label in enumerate(model.classes_):
            result[f"probability_{label}"] = probabilities[:, position]
    return result.reset_index(drop=True)
