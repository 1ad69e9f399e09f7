"""The runtime requirements come from what the pickles import, found without unpickling them."""

from __future__ import annotations

import importlib.metadata
import io
import json
import pickle
import sys
import types

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.errors import RequirementError
from pipeline.steps.requirements import (
    Global, distributions, model_distributions, pickle_globals, requirement, runtime_requirements,
)
from pipeline.steps.train import record_model_libraries
from mymodel.contract import Change, Snapshot, diff, required_bump
from pipeline.steps.build import PACKAGE_SOURCES
from pipeline.config import PACKAGE_DIR

COMPRESSIONS = [0, 3, ("lzma", 1)]
FAKE_MODULE = "madeup_estimators_for_a_test"
SOURCES = [PACKAGE_DIR / name for name in PACKAGE_SOURCES if name.endswith(".py")]


def fitted_pipeline(estimator=None) -> Pipeline:
    frame = pd.DataFrame({"age": [22.0, None, 35.0, 58.0, 4.0, 30.0], "sex": ["m", "f", "f", None, "m", "f"]})
    preprocess = ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]), ["age"]),
        ("categorical", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                  ("onehot", OneHotEncoder(handle_unknown="ignore"))]), ["sex"]),
    ])
    return Pipeline([("preprocess", preprocess), ("model", estimator or LogisticRegression())]).fit(
        frame, [0, 1, 1, 0, 0, 1])


def dumped(tmp_path, value, compress=3):
    path = tmp_path / "model.joblib"
    joblib.dump(value, path, compress=compress)
    return path


def canonical_versions(*names: str) -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in names}


@pytest.mark.parametrize("compress", COMPRESSIONS, ids=["uncompressed", "zlib", "lzma"])
def test_a_scikit_learn_pipeline_needs_scikit_learn_numpy_and_joblib(tmp_path, compress):
    path = dumped(tmp_path, fitted_pipeline(), compress)
    assert sorted(model_distributions(path, "the model 'M'")) == ["joblib", "numpy", "scikit-learn"]


@pytest.mark.parametrize("compress", COMPRESSIONS, ids=["uncompressed", "zlib", "lzma"])
def test_arrays_of_every_layout_are_skipped_and_a_sparse_matrix_needs_scipy(tmp_path, compress):
    value = {"text": np.array(["a", "bbb"]), "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
             "when": np.array(["2026-01-01"], dtype="datetime64[s]"), "empty": np.zeros((0, 3)),
             "objects": np.array([{"k": 1}, None], dtype=object), "sparse": scipy.sparse.csr_matrix(np.eye(3)),
             "records": np.zeros(2, dtype=[("x", "<i4"), ("y", "<f8", (3,))]),
             "records_with_objects": np.zeros(2, dtype=[("x", "<f8"), ("o", "O")]),
             "after": fitted_pipeline()}
    path = dumped(tmp_path, value, compress)
    assert sorted(model_distributions(path, "the model 'M'")) == ["joblib", "numpy", "scikit-learn", "scipy"]


def test_a_third_party_estimator_is_required_in_its_minor_series(tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    path = dumped(tmp_path, fitted_pipeline(lightgbm.LGBMClassifier(n_estimators=2, min_child_samples=1, verbose=-1)))
    version = importlib.metadata.version("lightgbm")
    major, minor = version.split(".")[:2]
    assert "lightgbm" in model_distributions(path, "the model 'M'")
    requires = runtime_requirements({"M": path}, {"lightgbm": version}, SOURCES)
    assert requires["lightgbm"] == f">={major}.{minor},<{major}.{int(minor) + 1}"


def test_the_titanic_requirements_are_what_the_pickles_and_the_package_import(tmp_path):
    """scikit-learn to its minor series, the rest within their major; scipy only when a pickle needs it."""
    path = dumped(tmp_path, fitted_pipeline())
    trained = canonical_versions("scikit-learn", "numpy", "scipy", "pandas", "joblib")
    requires = runtime_requirements({"M": path}, trained, SOURCES)
    sk, np_, pd_, jl = (trained[n] for n in ("scikit-learn", "numpy", "pandas", "joblib"))

    def major_range(version):
        major, minor = map(int, version.split(".")[:2])
        return f">={major}.{minor},<{major + 1}"
    assert requires == {"joblib": major_range(jl), "numpy": major_range(np_), "packaging": ">=22",
                        "pandas": major_range(pd_),
                        "scikit-learn": f">={sk},<{sk.split('.')[0]}.{int(sk.split('.')[1]) + 1}"}
    assert requirement("scikit-learn", "1.9.1") == ">=1.9.1,<1.10" and requirement("lightgbm", "0.3.2") == ">=0.3,<0.4"


class MadeUp:
    """Pickled as if defined in a module no distribution provides."""


@pytest.fixture()
def made_up_class():
    module = types.ModuleType(FAKE_MODULE)
    MadeUp.__module__, module.MadeUp = FAKE_MODULE, MadeUp
    sys.modules[FAKE_MODULE] = module  # only while pickling: pickle checks the class can be found
    yield MadeUp
    del sys.modules[FAKE_MODULE]
    MadeUp.__module__ = __name__


@pytest.mark.parametrize("inside", ["top", "object-array"])
def test_a_class_from_a_module_no_distribution_provides_is_refused_by_name(tmp_path, made_up_class, inside):
    value = made_up_class() if inside == "top" else np.array([made_up_class()], dtype=object)
    path = dumped(tmp_path, {"model": value})
    with pytest.raises(RequirementError) as raised:
        model_distributions(path, "the model 'M'")
    message = str(raised.value)
    assert f"the model 'M' ({FAKE_MODULE}.MadeUp) needs the module {FAKE_MODULE!r}" in message
    assert "which no installed distribution provides" in message and "train again" in message


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # unpickling would create the marker file


@pytest.mark.parametrize("compress", [0, 3], ids=["uncompressed", "zlib"])
def test_a_malicious_pickle_is_read_never_run(tmp_path, compress):
    marker = tmp_path / "unpickled"
    path = dumped(tmp_path, {"model": Evil(marker)}, compress)
    assert model_distributions(path, "the model 'M'") == {}  # io.open: the standard library needs none
    assert Global("io", "open") in pickle_globals(io.BytesIO(pickle.dumps(Evil(marker))))
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"\x80\x05\x95"], ids=["empty", "text", "cut"])
def test_a_file_that_is_no_pickle_is_one_clear_error(tmp_path, content):
    path = tmp_path / "model.joblib"
    path.write_bytes(content)
    with pytest.raises(RequirementError, match=r"the model 'M' cannot be scanned for the libraries it needs \(.+\); "
                                               r"train again"):
        model_distributions(path, "the model 'M'")


def test_a_truncated_array_is_one_clear_error(tmp_path):
    path = dumped(tmp_path, np.arange(1000.0), compress=0)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(RequirementError, match="the file ends inside an array"):
        model_distributions(path, "the model 'M'")


def test_a_library_a_model_adds_is_recorded_and_shows_under_environment(tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    path = dumped(tmp_path, fitted_pipeline(lightgbm.LGBMClassifier(n_estimators=2, min_child_samples=1, verbose=-1)))
    before = {"name": "M", "training_environment": canonical_versions("scikit-learn", "numpy")}
    after = {**before}
    record_model_libraries(after, path)
    assert after["training_environment"]["lightgbm"] == importlib.metadata.version("lightgbm")
    changes = diff(Snapshot("1.1.1+t", {"M": before}, {"M": "a"}, {}), Snapshot(None, {"M": after}, {"M": "a"}, {}))
    assert Change("environment", f"lightgbm (none) -> {importlib.metadata.version('lightgbm')}") in changes
    assert required_bump(changes) == "patch"
    dropped = diff(Snapshot("1.1.2+t", {"M": after}, {"M": "a"}, {}), Snapshot(None, {"M": before}, {"M": "a"}, {}))
    assert Change("environment", f"lightgbm {importlib.metadata.version('lightgbm')} -> (none)") in dropped


def test_a_requirement_added_or_dropped_between_builds_shows_under_environment():
    models, hashes = {"M": {"name": "M"}}, {"M": "a"}
    old = Snapshot("1.1.2+t", models, hashes, {}, {"numpy": ">=2.4,<3", "scipy": ">=1.17,<2"})
    new = Snapshot(None, models, hashes, {}, {"numpy": ">=2.4,<3", "lightgbm": ">=4.7,<4.8"})
    changes = diff(old, new)
    assert changes == [Change("environment", "requirement lightgbm>=4.7,<4.8 added (installing the package installs it)"),
                       Change("environment", "requirement scipy>=1.17,<2 dropped (no longer needed)")]
    assert required_bump(changes) == "patch"
    assert diff(Snapshot("1.0.0+t", models, hashes, {}), new) == []  # a build that recorded none: nothing to compare


def test_the_local_snapshot_carries_the_requirements_a_build_would_record(tmp_path):
    from pipeline.views.registry import local_snapshot

    models_dir = tmp_path / "models"
    (models_dir / "M").mkdir(parents=True)
    joblib.dump(fitted_pipeline(), models_dir / "M" / "model.joblib", compress=3)
    trained = canonical_versions("scikit-learn", "numpy", "pandas", "joblib")
    (models_dir / "M" / "metadata.json").write_text(json.dumps({"name": "M", "training_environment": trained}))
    assert sorted(local_snapshot(models_dir).requires) == ["joblib", "numpy", "packaging", "pandas", "scikit-learn"]


def test_a_published_snapshot_cached_before_requirements_were_recorded_is_read_again(tmp_path):
    from pipeline.views.registry import _read_cache

    entry = {"snapshot": {"version": "1.1.1+t", "models": {}, "model_sha256": {}, "release": {}},
             "wheel": "w.whl", "wheel_sha256": "ab" * 32, "size": 1, "uploaded": None}
    (tmp_path / f"{'ab' * 32}.json").write_text(json.dumps(entry))
    assert _read_cache(tmp_path, "ab" * 32) is None
    entry["snapshot"]["requires"] = {"numpy": ">=2.4,<3"}
    (tmp_path / f"{'ab' * 32}.json").write_text(json.dumps(entry))
    assert _read_cache(tmp_path, "ab" * 32).snapshot.requires == {"numpy": ">=2.4,<3"}


@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("lzma", 1), ("bz2", 3)], ids=["zlib", "gzip", "lzma", "bz2"])
@pytest.mark.parametrize("damage", ["cut-in-half", "garbage-after-header"])
def test_a_damaged_compressed_file_is_one_clear_error(tmp_path, compress, damage):
    path = dumped(tmp_path, {"a": np.arange(10000.0)}, compress)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if damage == "cut-in-half" else data[:12] + b"\x00garbage" * 50)
    with pytest.raises(RequirementError, match=r"the model 'M' cannot be scanned for the libraries it needs"):
        model_distributions(path, "the model 'M'")


def test_a_namespace_package_is_narrowed_to_the_distribution_holding_the_module():
    pytest.importorskip("zope.interface")
    assert distributions({"zope.interface.declarations": "the model 'M'"}) == {"zope-interface": "the model 'M'"}


def test_training_that_saves_a_model_no_distribution_provides_leaves_the_previous_models(tmp_path, made_up_class):
    from pipeline.steps.train import TrainedModel, save

    models_dir = tmp_path / "models"
    (models_dir / "Old").mkdir(parents=True)
    (models_dir / "Old" / "model.joblib").write_bytes(b"previous")
    model = TrainedModel("M", {"step": made_up_class()}, {"name": "M", "metrics": {}, "training_environment": {}})
    with pytest.raises(RequirementError, match=rf"the model 'M' \({FAKE_MODULE}.MadeUp\) needs the module"):
        save([model], models_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no models.new left behind
    assert (models_dir / "Old" / "model.joblib").read_bytes() == b"previous"
