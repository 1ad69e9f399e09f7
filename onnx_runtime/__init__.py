"""The models as ONNX graphs, run by onnxruntime: no scikit-learn, scipy, joblib or pandas.

    >>> import mymodel_onnx
    >>> mymodel_onnx.list_models()                  # doctest: +SKIP
    ['LogisticRegression', 'RandomForestClassifier', 'SVC']
    >>> mymodel_onnx.predict("SVC", {"pclass": 1, "sex": "female", "age": 29, "sibsp": 0,
    ...                              "parch": 0, "fare": 211.3, "embarked": "S"})  # doctest: +SKIP

The API of the scikit-learn package it is built beside (``mymodel``): the same input
checks and output columns; ``predict`` returns a pandas DataFrame when pandas is
installed, else a list of dicts (one per row). Every file is checked against the
manifest inside the wheel (itself checked against the installer's RECORD) before it is
read; nothing is unpickled. (This folder is the template ``make release`` stages as
``<import name>_onnx/`` beside copies of the package's store, schema, errors, contract,
environment and __main__ modules.)
"""

from __future__ import annotations

import functools
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

store.MODEL_FILE = "model.onnx"  # this package's models: the store lists folders holding one

__all__ = [
    "__version__", "list_models", "metadata", "load", "predict",
    "MymodelError", "UnknownModelError", "IntegrityError", "EnvironmentMismatchError", "SchemaError",
]


def list_models() -> list[str]:
    """The names of the models this package has as ONNX (``metadata()["not_converted"]``: the others, and why)."""
    return store.list_models()


def metadata(name: str | None = None) -> dict[str, Any]:
    """One model's metadata, or (without a name) the whole package's."""
    manifest = store.manifest()
    common = {"package_version": __version__, "data_tag": manifest.get("data_tag"),
              "release": manifest.get("release", {})}
    if name is not None:
        return {**store.model_metadata(_check_name(name)), **common}
    return {**common, "requires": manifest.get("requires", {}), "not_converted": _not_converted(),
            "models": {model: store.model_metadata(model) for model in list_models()}}


def _not_converted() -> dict[str, str]:
    """Model name -> why the release shipped it without ONNX (it is in the scikit-learn package only)."""
    recorded = store.manifest().get("not_converted", {})
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}


def _check_name(name: str) -> str:
    missing = _not_converted()
    if isinstance(name, str) and name in missing and name not in list_models():
        scikit_learn_package = store.DISTRIBUTION.removesuffix("-onnx")
        raise UnknownModelError(f"the model {name!r} has no ONNX form in {store.DISTRIBUTION} ({missing[name]}); "
                                f"use it from the {scikit_learn_package} package of the same version")
    return store.check_name(name)


def load(name: str, *, check_environment: bool = True):
    """An onnxruntime InferenceSession for the model ``name``, its file's sha256 checked first."""
    _check_name(name)
    if check_environment:
        from .environment import require_compatible

        require_compatible()
    from .external_data import NotAModel, external_tensor
    from .onnx_model import session

    with store.opened_verified(f"{name}/{store.MODEL_FILE}") as stream:
        model = stream.read()
    try:
        outside = external_tensor(model)
    except NotAModel as exc:
        raise IntegrityError(f"{name}/{store.MODEL_FILE} is not an ONNX model ({exc}); it is not loaded") from None
    if outside is not None:
        raise IntegrityError(
            f"{name}/{store.MODEL_FILE} keeps the tensor {outside!r} outside the file (ONNX external data, which "
            f"onnxruntime would read from a path relative to this process's working directory); it is not loaded: "
            f"a release of {store.DISTRIBUTION} never publishes such a model, so do not use this copy; install it "
            "again from the index you trust")
    return session(model)


@functools.cache
def _cached(name: str, check_environment: bool):
    from .onnx_model import OnnxModel

    return OnnxModel(load(name, check_environment=check_environment), store.model_metadata(name))


def predict(name: str, rows: Any, *, check_environment: bool = True):
    """Predictions for raw rows: a DataFrame, a dict or a list of dicts.

    A ``prediction`` column: a classifier's label, followed by one ``probability_<class>`` column
    per class; a regressor's number (float), alone. A DataFrame when pandas is installed, else a
    list of dicts, one per row.
    """
    from .schema import to_columns

    meta = store.model_metadata(_check_name(name))
    columns = to_columns(rows, meta["input_schema"])
    return _cached(name, check_environment).predict(columns)
