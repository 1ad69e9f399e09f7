"""[models.<Name>] tables in dataset.toml: checked on load, trained as declared, defaults unchanged."""

import json

import joblib
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from pipeline.config import DATASET_CONFIG, DEFAULT_MODELS, load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.errors import ConfigError, TrainingError
from pipeline.steps.model_specs import CALIBRATED_KEY, ESTIMATOR_KEY, ESTIMATORS, estimator_class
from pipeline.steps.train import METADATA_FILE, MODEL_FILE, make_pipeline, save, train

WITHOUT_MODELS = DATASET_CONFIG.read_text(encoding="utf-8").split("\n[models.")[0]


def config_with(tmp_path, models: str):
    path = tmp_path / "dataset.toml"
    path.write_text(WITHOUT_MODELS + "\n" + models, encoding="utf-8")
    return load_dataset_config(path)


def config_error(load, *args) -> str:
    """The one-line ConfigError message ``load(*args)`` raises."""
    with pytest.raises(ConfigError) as caught:
        load(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


def refused(tmp_path, models: str) -> str:
    return config_error(config_with, tmp_path, models)


def test_the_committed_tables_are_the_defaults(tmp_path):
    assert load_dataset_config().models == DEFAULT_MODELS
    assert config_with(tmp_path, "").models == DEFAULT_MODELS  # no [models]: today's three


def test_an_unknown_estimator_is_refused_with_the_allowed_ones(tmp_path):
    message = refused(tmp_path, '[models.Boosted]\nestimator = "XGBClassifier"\n')
    assert "models.Boosted.estimator = 'XGBClassifier' is not an allowed estimator" in message
    assert ", ".join(ESTIMATORS) in message


def test_an_unknown_parameter_is_named_with_the_valid_ones(tmp_path):
    message = refused(tmp_path, '[models.Forest]\nestimator = "RandomForestClassifier"\nn_estimator = 300\n')
    assert "models.Forest.n_estimator is not a parameter of RandomForestClassifier" in message
    assert "did you mean n_estimators?" in message
    assert "max_depth" in message


@pytest.mark.parametrize("value, shown, reason", [
    ('"300"', "'300'", "must be an int in the range [1, inf). Got '300' instead"),  # wrong type
    ("0", "0", "must be an int in the range [1, inf). Got 0 instead"),  # wrong value
], ids=["wrong-type", "wrong-value"])
def test_a_wrong_value_is_refused_with_scikit_learns_reason(tmp_path, value, shown, reason):
    message = refused(tmp_path, f'[models.Forest]\nestimator = "RandomForestClassifier"\nmax_depth = 3\n'
                                f"n_estimators = {value}\n")
    assert f"models.Forest.n_estimators = {shown} is invalid" in message
    assert reason in message


def test_no_models_at_all_is_refused(tmp_path):
    assert "[models] declares no model" in refused(tmp_path, "[models]\n")


def test_a_table_without_an_estimator_is_refused(tmp_path):
    message = refused(tmp_path, "[models.Forest]\nn_estimators = 300\n")
    assert "[models.Forest] needs the key 'estimator'" in message


@pytest.mark.parametrize("models, expected", [
    ('[models.SVC]\nestimator = "SVC"\n', "models.SVC (SVC) gives no probabilities"),
    ('[models.SVC]\nestimator = "SVC"\ncalibrated = "yes"\n', "models.SVC.calibrated = 'yes' must be true or false"),
    ('[models.Near]\nestimator = "KNeighborsClassifier"\nrandom_state = "seed"\n',
     "models.Near.random_state is not a parameter of KNeighborsClassifier"),
    ('[models.Forest]\nestimator = "RandomForestClassifier"\nn_estimators = true\n',
     "models.Forest.n_estimators = true is a boolean; RandomForestClassifier expects a value like its default 100"),
    ('[models."my model"]\nestimator = "SVC"\n', "[models.my model]: a model name is a folder"),
    ('[models]\nForest = "RandomForestClassifier"\n', "models.Forest must be a table"),
], ids=["no-probabilities", "calibrated-not-bool", "seed-without-random-state", "bool-for-int", "bad-name", "not-a-table"])
def test_other_bad_tables_are_refused_naming_the_key(tmp_path, models, expected):
    assert expected in refused(tmp_path, models)


def test_the_reserved_keys_are_no_estimators_parameter():
    for name in ESTIMATORS:
        assert not {ESTIMATOR_KEY, CALIBRATED_KEY} & set(estimator_class(name)().get_params()), name


def test_two_tables_train_exactly_those_two_models_with_their_hyperparameters(tmp_path):
    config = config_with(tmp_path, '[models.Forest]\nestimator = "RandomForestClassifier"\nn_estimators = 7\n'
                                   'max_depth = 3\nrandom_state = "seed"\n\n'
                                   '[models.Linear]\nestimator = "LogisticRegression"\nC = 0.5\n')
    models = train(load_dataset(config), config)
    assert [m.name for m in models] == ["Forest", "Linear"]
    forest, linear = (m.metadata for m in models)
    assert forest["estimator"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert (forest["params"]["n_estimators"], forest["params"]["max_depth"]) == (7, 3)
    assert forest["params"]["random_state"] == config.seed
    assert len(models[0].pipeline.named_steps["model"].estimators_) == 7
    assert linear["params"]["C"] == 0.5 and linear["params"]["random_state"] is None


def old_estimators(seed):
    """pipeline/steps/train.py's hard-coded models before they moved to dataset.toml."""
    return {
        "LogisticRegression": LogisticRegression(max_iter=1000),
        "RandomForestClassifier": RandomForestClassifier(n_estimators=100, random_state=seed),
        "SVC": CalibratedClassifierCV(SVC(random_state=seed), ensemble=False),
    }


def test_the_default_models_are_byte_identical_to_the_hard_coded_ones(tmp_path):
    config = load_dataset_config()
    dataset = load_dataset(config)
    models_dir = save(train(dataset, config), tmp_path / "models")
    X, y = dataset.frame.loc[:, list(dataset.features)], dataset.frame[dataset.target]
    X_train, _, y_train, _ = train_test_split(X, y, test_size=config.test_size, random_state=config.seed, stratify=y)
    old = old_estimators(config.seed)
    assert sorted(p.name for p in models_dir.iterdir() if p.is_dir()) == sorted(old)
    for name, estimator in old.items():
        joblib.dump(make_pipeline(estimator, config).fit(X_train, y_train), tmp_path / f"{name}.joblib", compress=3)
        assert (models_dir / name / MODEL_FILE).read_bytes() == (tmp_path / f"{name}.joblib").read_bytes(), name
        metadata = json.loads((models_dir / name / METADATA_FILE).read_text())
        assert metadata["estimator"] == f"{type(estimator).__module__}.{type(estimator).__name__}"
        assert metadata["params"] == json.loads(json.dumps({k: v if isinstance(v, (str, int, float, bool, type(None)))
                                                            else repr(v) for k, v in estimator.get_params().items()}))


def test_hyperparameters_that_clash_at_fit_time_stop_training_naming_the_model(tmp_path):
    config = config_with(tmp_path, '[models.Forest]\nestimator = "RandomForestClassifier"\nn_estimators = 5\n'
                                   'oob_score = true\nbootstrap = false\n')  # each valid alone: passes the load checks
    with pytest.raises(TrainingError) as caught:
        train(load_dataset(config), config)
    message = str(caught.value)
    assert "'Forest' cannot be trained with its [models.Forest] hyperparameters" in message
    assert "Out of bag estimation only available if bootstrap=True" in message and "\n" not in message
