"""ONNX copies of real pipelines: converted with their preprocessing, checked against scikit-learn on the
held-out rows, recorded in the metadata, and refused by a build or a policy when they should be."""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_wine
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from pipeline.steps import onnx_export
from pipeline.config import DEFAULT_MODELS, DEFAULT_REGRESSION_MODELS, REPO, load_dataset_config
from pipeline.steps.data import Dataset, load_dataset
from pipeline.errors import BuildError, OnnxError
from pipeline.steps.train import METADATA_FILE, MODEL_FILE, TrainedModel, make_pipeline, save, split, with_onnx
from tests.unit.test_models_config import config_error

TITANIC = load_dataset_config()


@pytest.fixture(scope="module")
def titanic():
    """The default Titanic split: X_train, X_test, y_train, y_test."""
    return split(load_dataset(TITANIC), TITANIC)


def fitted(spec, config, X, y):
    return make_pipeline(spec.build(config.seed), config).fit(X, y)


def onnx_predictions(exported, X):
    return onnx_export.session(exported.model).run(None, onnx_export.feed(X, exported.record["inputs"]))


def frame_config(frame, task):
    """A config for a numeric-only frame whose target is "target" (the wine and diabetes data)."""
    features = tuple(c for c in frame.columns if c != "target")
    models = DEFAULT_MODELS if task == "classification" else DEFAULT_REGRESSION_MODELS
    return dataclasses.replace(TITANIC, target="target", numeric_features=features, categorical_features=(),
                               task=task, models=models, task_declared=True)


@pytest.mark.parametrize("spec", DEFAULT_MODELS, ids=lambda spec: spec.name)
def test_each_default_titanic_model_converts_and_onnx_runtime_predicts_as_scikit_learn(titanic, spec):
    X_train, X_test, y_train, _ = titanic
    pipeline = fitted(spec, TITANIC, X_train, y_train)
    assert X_test["embarked"].isna().any() or X_train["embarked"].isna().any()  # the NaN-imputed categories
    exported = onnx_export.export(spec.name, pipeline, X_test, TITANIC.task, TITANIC.numeric_features)
    record = exported.record
    assert record["status"] == "converted", record
    assert record["sha256"] == hashlib.sha256(exported.model).hexdigest()
    assert record["inputs"] == [{"name": c, "type": "float" if c in TITANIC.numeric_features else "string"}
                                for c in X_test.columns]
    assert record["outputs"] == {"label": "label", "probabilities": "probabilities"}
    assert record["opset"] == 17 and record["rows_checked"] == len(X_test) and 0 <= record["max_difference"] <= 1e-5
    labels, probabilities = onnx_predictions(exported, X_test)
    assert list(labels) == list(pipeline.predict(X_test))
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(X_test), atol=1e-5)
    session = onnx_export.session(exported.model)
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [
        (c["name"], "tensor(float)" if c["type"] == "float" else "tensor(string)", [None, 1]) for c in record["inputs"]]


def test_a_missing_category_is_fed_as_the_empty_string_and_imputed_as_scikit_learn_does(titanic):
    X_train, X_test, y_train, _ = titanic
    pipeline = fitted(DEFAULT_MODELS[0], TITANIC, X_train, y_train)
    rows = X_test.head(4).copy()
    rows["embarked"] = [None, np.nan, "S", "Q"]
    rows["age"] = [np.nan, 30.0, np.nan, 2.0]
    exported = onnx_export.export("LogisticRegression", pipeline, rows, TITANIC.task, TITANIC.numeric_features)
    assert exported.record["status"] == "converted", exported.record
    assert list(onnx_export.feed(rows, exported.record["inputs"])["embarked"].ravel()) == ["", "", "S", "Q"]
    np.testing.assert_allclose(onnx_predictions(exported, rows)[1], pipeline.predict_proba(rows), atol=1e-5)


def test_wine_classes_and_a_column_name_skl2onnx_would_rewrite():
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    config = frame_config(frame, "classification")
    X_train, X_test, y_train, _ = split(Dataset(frame, config.features, "target", "sklearn", "0" * 64), config)
    pipeline = fitted(config.models[0], config, X_train, y_train)
    exported = onnx_export.export("LogisticRegression", pipeline, X_test, config.task, config.numeric_features)
    assert exported.record["status"] == "converted", exported.record
    names = [i.name for i in onnx_export.session(exported.model).get_inputs()]
    assert "od280/od315_of_diluted_wines" in names and names == list(X_test.columns)
    labels, probabilities = onnx_predictions(exported, X_test)
    assert list(labels) == list(pipeline.predict(X_test)) and probabilities.shape == (len(X_test), 3)


@pytest.mark.parametrize("spec", DEFAULT_REGRESSION_MODELS, ids=lambda spec: spec.name)
def test_each_default_regressor_converts_within_the_relative_tolerance(spec):
    frame = load_diabetes(as_frame=True, scaled=False).frame
    config = frame_config(frame, "regression")
    X_train, X_test, y_train, _ = split(Dataset(frame, config.features, "target", "sklearn", "0" * 64), config)
    pipeline = fitted(spec, config, X_train, y_train)
    exported = onnx_export.export(spec.name, pipeline, X_test, config.task, config.numeric_features)
    assert exported.record["status"] == "converted", exported.record
    assert exported.record["outputs"] == {"variable": "variable"}
    (variable,) = onnx_predictions(exported, X_test)
    expected = pipeline.predict(X_test)
    assert variable.shape == (len(X_test), 1)
    assert np.max(np.abs(variable.ravel() - expected) / np.maximum(np.abs(expected), 1)) <= 1e-6


def test_a_tolerance_tighter_than_float32_reports_the_disagreement_in_one_line(titanic):
    frame = load_diabetes(as_frame=True, scaled=False).frame
    config = frame_config(frame, "regression")
    X_train, X_test, y_train, _ = split(Dataset(frame, config.features, "target", "sklearn", "0" * 64), config)
    pipeline = fitted(config.models[0], config, X_train, y_train)
    exported = onnx_export.export("Ridge", pipeline, X_test, config.task, config.numeric_features, tolerance=1e-12)
    assert exported.model is None and exported.record["status"] == "disagrees"
    reason = exported.record["reason"]
    assert "(relative) on held-out row" in reason and "tolerance 1e-12" in reason and "\n" not in reason
    assert exported.describe("Ridge") == f"onnx: Ridge disagrees: {reason}; it ships without ONNX"


# A team module with a transformer class of its own, which no ONNX converter knows (the integration
# test writes it into a package as src/mymodel/features.py).
TEAM_MODULE = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline


class LogFare(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.log1p(np.clip(np.asarray(X, dtype=float), 0, None))


class Clipped(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X.clip(lower=0)  # a DataFrame in, a DataFrame out: the columns keep their names


def logistic(numeric_features, categorical_features, seed):
    columns = ColumnTransformer([("numeric", make_pipeline(SimpleImputer(), LogFare()), numeric_features)])
    return make_pipeline(columns, LogisticRegression(random_state=seed))


def register():  # a team module's register_onnx_converters(): log1p(clip(x, 0)) as ONNX operators
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxClip, OnnxLog

    def shape(operator):
        operator.outputs[0].type = operator.inputs[0].type.__class__(operator.inputs[0].type.shape)

    def convert(scope, operator, container):
        opset = container.target_opset
        clipped = OnnxClip(operator.inputs[0], np.array(0, dtype=np.float32), op_version=opset)
        shifted = OnnxAdd(clipped, np.array([1], dtype=np.float32), op_version=opset)
        OnnxLog(shifted, op_version=opset, output_names=operator.outputs[:1]).add_to(scope, container)

    update_registered_converter(LogFare, "Team" + LogFare.__name__, shape, convert)
"""
NO_CONVERTER = (f"skl2onnx has no converter for {__name__}.LogFare; register one in its module: def "
                "register_onnx_converters() calling skl2onnx.update_registered_converter (docs/onnx.md)")
team_module = {"__name__": __name__}  # its classes are named as this module's
exec(TEAM_MODULE, team_module)


def team_pipeline(X, y):
    return team_module["logistic"](list(TITANIC.numeric_features), [], 0).fit(X, y)


def test_a_custom_transformer_is_not_converted_and_the_reason_names_its_class(titanic):
    X_train, X_test, y_train, _ = titanic
    exported = onnx_export.export("Team", team_pipeline(X_train, y_train), X_test, TITANIC.task,
                                  TITANIC.numeric_features)
    assert exported.model is None
    assert exported.record == {"status": "not converted", "reason": NO_CONVERTER}


def test_a_factory_starting_with_the_teams_class_names_that_class(titanic):
    """The team's class first, columns picked by name after it. Before: skl2onnx's own error, cut short
    ("Unable to find column name 'pclass' among names ['variable']. Make sure the input names ...")."""
    X_train, X_test, y_train, _ = titanic
    numeric = list(TITANIC.numeric_features)
    first = Pipeline([("clip", team_module["Clipped"]()),
                      ("columns", ColumnTransformer([("numeric", SimpleImputer(), numeric)])),
                      ("model", LogisticRegression())])
    exported = onnx_export.export("Team", first.fit(X_train[numeric], y_train), X_test[numeric], TITANIC.task,
                                  TITANIC.numeric_features)
    assert exported.record == {"status": "not converted", "reason": NO_CONVERTER.replace("LogFare", "Clipped")}


def test_a_class_whose_converter_is_registered_converts_and_agrees(titanic):
    """What a team module's register_onnx_converters() does (update_registered_converter with a shape
    calculator and a converter): the model converts with its preprocessing and agrees with scikit-learn."""
    X_train, X_test, y_train, _ = titanic
    registered = {"__name__": __name__}
    exec(TEAM_MODULE.replace("LogFare", "RegisteredLogFare"), registered)  # another class: LogFare stays without
    registered["register"]()
    pipeline = registered["logistic"](list(TITANIC.numeric_features), [], 0).fit(X_train, y_train)
    assert onnx_export.without_converter(pipeline) == []
    exported = onnx_export.export("Team", pipeline, X_test, TITANIC.task, TITANIC.numeric_features)
    assert exported.record["status"] == "converted", exported.record
    assert exported.record["rows_checked"] == len(X_test) and exported.record["max_difference"] <= 1e-5


def test_required_onnx_stops_before_saving_and_names_the_model(titanic, tmp_path):
    X_train, X_test, y_train, _ = titanic
    models = {"Team": team_pipeline(X_train, y_train),
              "LogisticRegression": fitted(DEFAULT_MODELS[0], TITANIC, X_train, y_train)}
    printed = []
    outcomes = onnx_export.exported_all(models, X_test, TITANIC.task, TITANIC.numeric_features, "optional",
                                        out=printed.append)
    assert printed == [outcomes["Team"].describe("Team"), outcomes["LogisticRegression"].describe("LogisticRegression")]
    assert printed[1].startswith(f"onnx: LogisticRegression converted ({len(X_test)} held-out rows agree")
    with pytest.raises(OnnxError) as caught:
        onnx_export.exported_all(models, X_test, TITANIC.task, TITANIC.numeric_features, "required", out=printed.append)
    assert str(caught.value) == (
        f"the model 'Team' does not convert to ONNX ({NO_CONVERTER}), and "
        '[release] onnx = "required" in dataset.toml; make the model convertible (or remove its table), '
        'or set onnx = "optional" to ship it without ONNX')


def test_save_writes_model_onnx_only_for_a_model_that_converted_and_build_checks_its_hash(titanic, tmp_path):
    X_train, X_test, y_train, _ = titanic
    metadata = {"training_environment": {}, "name": "?", "metrics": {}}
    # save() refuses a pickle of a class defined in the tests: a library function skl2onnx cannot convert instead
    numeric = Pipeline([("impute", SimpleImputer()), ("log", FunctionTransformer(np.log1p))])
    logs = Pipeline([("columns", ColumnTransformer([("numeric", numeric, list(TITANIC.numeric_features))])),
                     ("model", LogisticRegression())]).fit(X_train, y_train)
    models = with_onnx([TrainedModel("Team", logs, {**metadata, "name": "Team"}),
                        TrainedModel("LogisticRegression", fitted(DEFAULT_MODELS[0], TITANIC, X_train, y_train),
                                     {**metadata, "name": "LogisticRegression"})], X_test, TITANIC)
    models_dir = save(models, tmp_path / "models")
    written = {p.parent.name: p.read_bytes() for p in models_dir.glob(f"*/{onnx_export.ONNX_FILE}")}
    assert list(written) == ["LogisticRegression"]
    saved = {name: json.loads((models_dir / name / METADATA_FILE).read_text()) for name in ("Team", "LogisticRegression")}
    assert saved["Team"]["onnx"]["status"] == "not converted" and (models_dir / "Team" / MODEL_FILE).is_file()
    assert saved["LogisticRegression"]["onnx"]["sha256"] == hashlib.sha256(written["LogisticRegression"]).hexdigest()
    assert onnx_export.packaged_files(models_dir, saved) == {
        "LogisticRegression/model.onnx": saved["LogisticRegression"]["onnx"]["sha256"]}
    onnx_file = models_dir / "LogisticRegression" / onnx_export.ONNX_FILE
    onnx_file.write_bytes(written["LogisticRegression"] + b"\0")
    with pytest.raises(BuildError, match=r"model.onnx has sha256 [0-9a-f]{64}, not the [0-9a-f]{64} recorded in "
                                         r"LogisticRegression/metadata.json; run make train"):
        onnx_export.packaged_files(models_dir, saved)
    onnx_file.unlink()
    with pytest.raises(BuildError, match="model.onnx is missing in LogisticRegression/metadata.json"):
        onnx_export.packaged_files(models_dir, saved)


def test_onnx_off_records_nothing(titanic):
    X_train, X_test, y_train, _ = titanic
    model = TrainedModel("LogisticRegression", fitted(DEFAULT_MODELS[0], TITANIC, X_train, y_train), {})
    assert with_onnx([model], X_test, dataclasses.replace(TITANIC, onnx="off")) == [model]


CONVERT_ONCE = """
import hashlib, sys
from pipeline.steps import onnx_export
from pipeline.config import load_dataset_config, DEFAULT_MODELS
from pipeline.steps.data import Dataset, load_dataset
from pipeline.steps.train import make_pipeline, split
config = load_dataset_config()
X_train, X_test, y_train, _ = split(load_dataset(config), config)
pipeline = make_pipeline(DEFAULT_MODELS[0].build(config.seed), config).fit(X_train, y_train)
print(hashlib.sha256(onnx_export.export("LogisticRegression", pipeline, X_test, config.task,
                                        config.numeric_features).model).hexdigest())
"""


def test_the_same_training_gives_the_same_bytes_in_every_process():
    """Python's string hashing differs per process; skl2onnx's opset list followed it before it was sorted
    (hash seeds 0 and 1 listed the two opsets in opposite orders)."""
    digests = {subprocess.run([sys.executable, "-c", CONVERT_ONCE], cwd=REPO, check=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip() for seed in (0, 1)}
    assert len(digests) == 1 and len(next(iter(digests))) == 64, digests


@pytest.mark.parametrize("line, message", [
    ('onnx = "sometimes"', '[release] onnx = \'sometimes\' is not one of "optional", "required", "off"'),
    ("onnx_tolerance = 0", "[release] onnx_tolerance = 0 must be a number above 0 and below 1"),
    ('onnx_tolerance = "1e-5"', "[release] onnx_tolerance = '1e-5' must be a number above 0 and below 1"),
])
def test_a_bad_onnx_setting_is_refused_in_one_line(tmp_path, line, message):
    path = tmp_path / "dataset.toml"
    path.write_text(TITANIC.path.read_text().replace("\n[release]\n", f"\n[release]\n{line}\n"))
    assert message in config_error(load_dataset_config, path)


def test_the_onnx_settings_are_read_from_the_release_table(tmp_path):
    path = tmp_path / "dataset.toml"
    path.write_text(TITANIC.path.read_text().replace("\n[release]\n", '\n[release]\nonnx = "required"\n'
                                                                      "onnx_tolerance = 1e-4\n"))
    config = load_dataset_config(path)
    assert (config.onnx, config.onnx_tolerance) == ("required", 1e-4)
    assert (TITANIC.onnx, TITANIC.onnx_tolerance) == ("optional", None)


def test_a_published_onnx_record_is_validated_like_the_rest_of_the_metadata():
    from mymodel.errors import MalformedBuild
    from mymodel.published import check_manifest, check_metadata

    with pytest.raises(MalformedBuild, match="onnx.status is null, not a string"):
        check_metadata({"onnx": {"status": None}}, "M/metadata.json")
    with pytest.raises(MalformedBuild, match="onnx.M/model.onnx is"):
        check_manifest({"onnx": {"M/model.onnx": "zz"}})


def test_the_version_page_says_which_models_have_an_onnx_copy_and_why_not():
    from index.registry import views
    from tests.unit.test_registry_views import THREE_CLASSES, release

    wine = release("1.1.1+wine", "classification", THREE_CLASSES, ("SVC", "Team", "Old"))
    wine.facts.models["SVC"]["onnx"] = {"status": "converted", "sha256": "ab" * 32}
    wine.facts.models["Team"]["onnx"] = {"status": "not converted", "reason": "no converter for <b>X</b>"}
    table = views.version_html("mymodel", wine, None, None, "u/", root="../../../").split('id="onnx"', 1)[1]
    rows = table.split("</tbody>", 1)[0].split("<tbody>", 1)[1]
    assert rows == ("<tr><td>SVC</td><td>yes</td></tr>"
                    "<tr><td>Team</td><td>no (not converted: no converter for &lt;b&gt;X&lt;/b&gt;)</td></tr>")
    without = release("1.1.1+wine", "classification", THREE_CLASSES, ("SVC",))
    assert 'id="onnx"' not in views.version_html("mymodel", without, None, None, "u/", root="../../../")
