"""[models.<Name>] tables naming an estimator by import path, or a factory of a module of the package.

Factories are imported from a real package written to tmp_path (``package=``): the pipeline
imports them as ``mymodel.<module>``, and these tests leave the repository's own package alone.
"""

import importlib
import tomllib

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline

from pipeline.steps import model_specs
from pipeline.steps.train import estimators
from tests.unit.test_models_config import config_error, config_with, refused

FEATURES = (("age", "fare"), ("sex",))
GOOD_FACTORY = """
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

CALLS = []

def make_pipeline(numeric_features, categorical_features, seed, C=1.0):
    CALLS.append((numeric_features, categorical_features, seed, C))
    columns = ColumnTransformer([("numeric", SimpleImputer(), numeric_features),
                                 ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical_features)])
    return Pipeline([("columns", columns), ("model", LogisticRegression(C=C, random_state=seed))])
"""


@pytest.fixture
def package(team_package):
    """(the stand-in package's name, a function writing one of its modules)."""
    return team_package.name, team_package.write


def checked(table: str, package: str, path="dataset.toml", task="classification"):
    specs = model_specs.parse(tomllib.loads(table)["models"], path)
    model_specs.check(specs, 7, path, task, *FEATURES, package=package)
    return specs


def factory_refused(table: str, package: str) -> str:
    return config_error(checked, table, package)


# An estimator by import path: checked as the built-in names are.

def test_an_import_path_estimator_is_built_with_its_hyperparameters_and_seed(tmp_path):
    config = config_with(tmp_path, '[models.Boosted]\nestimator = "lightgbm.LGBMClassifier"\n'
                                   'n_estimators = 20\nrandom_state = "seed"\n')
    built = estimators(config)["Boosted"]
    assert isinstance(built, LGBMClassifier)
    assert (built.n_estimators, built.random_state) == (20, config.seed)
    assert model_specs.libraries(config.models) == ("lightgbm",)  # recorded, then pinned at runtime


def test_a_near_miss_of_a_named_parameter_is_refused_even_where_kwargs_would_take_it(tmp_path):
    """One check for every estimator: a key get_params() lacks is taken when the constructor keeps it (LightGBM's
    **kwargs keep any keyword) and it is no near miss of a named parameter; LightGBM's own parameter names and
    aliases pass, whatever named parameter they resemble, and a class without **kwargs refuses any other key."""
    message = refused(tmp_path, '[models.Boosted]\nestimator = "lightgbm.LGBMClassifier"\nn_estimator = 20\n')
    assert "models.Boosted.n_estimator is not a parameter of lightgbm.LGBMClassifier" in message
    assert "did you mean n_estimators?" in message and "num_leaves" in message  # the valid names: get_params()
    aliases = {"lambda_l1": 0.5, "num_threads": 1, "max_leaves": 15, "colsample_bynode": 0.9, "verbosity": -1}
    config = config_with(tmp_path, '[models.Boosted]\nestimator = "lightgbm.LGBMClassifier"\n'
                         + "".join(f"{key} = {value}\n" for key, value in aliases.items()))
    assert {key: estimators(config)["Boosted"].get_params()[key] for key in aliases} == aliases
    assert "models.Logistic.verbosity is not a parameter of LogisticRegression" in \
        refused(tmp_path, '[models.Logistic]\nestimator = "LogisticRegression"\nverbosity = 1\n')


def test_an_import_path_estimators_unknown_parameter_is_named_with_a_close_match(tmp_path):
    message = refused(tmp_path, '[models.Forest]\nestimator = "sklearn.ensemble.RandomForestClassifier"\n'
                                'n_estimator = 20\n')
    assert "models.Forest.n_estimator is not a parameter of sklearn.ensemble.RandomForestClassifier" in message
    assert "did you mean n_estimators?" in message
    assert "max_depth" in message  # the valid names: get_params() of an instance


@pytest.mark.parametrize("key", ["verbose", "verbosity"])
def test_lightgbm_takes_the_parameters_its_constructor_takes_through_kwargs(tmp_path, key, capfd):
    """LightGBM's get_params() lacks verbose until it is set: a table may set it, and training is then quiet."""
    config = config_with(tmp_path, f'[models.Boosted]\nestimator = "lightgbm.LGBMClassifier"\nn_estimators = 5\n'
                                   f'min_child_samples = 400\n{key} = -1\n')
    assert config.models[0].params[key] == -1
    built = estimators(config)["Boosted"]
    assert built.get_params()[key] == -1
    X = np.arange(600, dtype=float).reshape(-1, 1)
    capfd.readouterr()
    built.fit(X, (X[:, 0] > 300).astype(int))  # min_child_samples too high: LightGBM would warn on every tree
    assert "[LightGBM]" not in "".join(capfd.readouterr())


@pytest.mark.parametrize("table, expected", [
    ('estimator = "lightgbm.LGBMClassifier"\nn_estimators = true\n',
     "models.Boosted.n_estimators = true is a boolean; lightgbm.LGBMClassifier expects a value like its default 100"),
    ('estimator = "lightgbm.LGBMClasifier"\n',
     "the module lightgbm has no LGBMClasifier; did you mean lightgbm.LGBMClassifier? fix the import path"),
    ('estimator = "notinstalledlib.BoostClassifier"\n',
     "the module 'notinstalledlib' is not installed; add its distribution to the train group of pyproject.toml"),
    ('estimator = "collections.OrderedDict"\n', "is not an estimator class with the scikit-learn API"),
    ('estimator = "lightgbm.LGBMRegressor"\n', "= 'lightgbm.LGBMRegressor' is for regression, but [dataset] task = "
                                               "'classification'"),
    ('estimator = "lightgbm"\n', "is not an allowed estimator; use one of DecisionTreeClassifier"),
], ids=["boolean", "misspelt-class", "not-installed", "not-an-estimator", "other-task", "no-class"])
def test_a_bad_import_path_estimator_is_refused_naming_the_key(tmp_path, table, expected):
    assert expected in refused(tmp_path, "[models.Boosted]\n" + table)


# A factory of a module of the package.

def test_a_factory_gets_the_feature_lists_the_seed_and_the_tables_keys(package):
    name, write = package
    write("features", GOOD_FACTORY)
    specs = checked('[models.Team]\nfactory = "features:make_pipeline"\nC = 0.5\n', name)
    built = specs[0].build(7, *FEATURES, package=name)
    assert isinstance(built, Pipeline) and built.named_steps["model"].C == 0.5
    calls = importlib.import_module(f"{name}.features").CALLS
    assert calls[-1] == (["age", "fare"], ["sex"], 7, 0.5)


@pytest.mark.parametrize("module, table, expected", [
    (None, 'factory = "features:make_pipeline"',
     "models.Team.factory = 'features:make_pipeline': there is no module src/{package}/features.py; "
     "add it to the package folder or fix the module name"),
    ("import nosuchlibrary\n", 'factory = "features:make_pipeline"',
     "src/{package}/features.py cannot be imported (ModuleNotFoundError: No module named 'nosuchlibrary')"),
    ("raise RuntimeError('half-written')\n", 'factory = "features:make_pipeline"',
     "src/{package}/features.py cannot be imported (RuntimeError: half-written); fix the module"),
    (GOOD_FACTORY, 'factory = "features:make_pipelin"',
     "src/{package}/features.py has no function make_pipelin; did you mean features:make_pipeline? define "
     "def make_pipelin(numeric_features, categorical_features, seed, **params) there"),
    ("make_pipeline = 3\n", 'factory = "features:make_pipeline"',
     "features.make_pipeline in src/{package}/features.py is a int, not a function"),
    ("def make_pipeline(numeric_features, categorical_features, seed):\n    return {'model': 1}\n",
     'factory = "features:make_pipeline"',
     "make_pipeline returned a dict, which is not a scikit-learn estimator (TypeError: it has no fit, predict "
     "and get_params); return an unfitted estimator or Pipeline that takes the raw feature columns"),
    (GOOD_FACTORY, 'factory = "features:make_pipeline"\npenalty = "l1"',
     "calling make_pipeline(numeric_features, categorical_features, seed, penalty) raised TypeError: "
     "make_pipeline() got an unexpected keyword argument 'penalty'; fix the function in "
     "src/{package}/features.py or the keys of [models.Team]"),
    ("def make_pipeline(numeric_features, categorical_features, seed):\n    raise ValueError('no columns\\nmore')\n",
     'factory = "features:make_pipeline"', "raised ValueError: no columns; fix the function"),
    ("from sklearn.linear_model import Ridge\ndef make_pipeline(numeric_features, categorical_features, seed):\n"
     "    return Ridge()\n", 'factory = "features:make_pipeline"',
     "models.Team.factory = 'features:make_pipeline' is for regression, but [dataset] task = 'classification'"),
], ids=["module-missing", "module-imports-a-missing-library", "module-raises", "function-missing", "not-callable",
        "returns-no-estimator", "unknown-key", "function-raises", "other-task"])
def test_a_failing_factory_is_one_error_naming_the_table_and_the_fix(package, module, table, expected):
    name, write = package
    if module is not None:
        write("features", module)
    message = factory_refused(f"[models.Team]\n{table}\n", name)
    assert message.startswith("dataset.toml: ")
    assert expected.format(package=name) in message


@pytest.mark.parametrize("table, expected", [
    ('estimator = "LogisticRegression"\nfactory = "features:make_pipeline"\n',
     "[models.Team] has both estimator and factory; keep one"),
    ('factory = "features.make_pipeline"\n', "models.Team.factory = 'features.make_pipeline' is not "
                                             '"<module>:<function>"'),
    ('factory = "features:make_pipeline"\nseed = 3\n', "models.Team.seed is passed to the factory by the pipeline"),
], ids=["both", "not-module-colon-function", "reserved-keyword"])
def test_a_malformed_factory_table_is_refused_on_load(tmp_path, table, expected):
    assert expected in refused(tmp_path, "[models.Team]\n" + table)


def test_a_factory_of_the_repositorys_own_package_is_looked_up_in_src_mymodel(tmp_path):
    """The default package is mymodel: the module is src/mymodel/<module>.py (none exists in this checkout)."""
    message = refused(tmp_path, '[models.Team]\nfactory = "teamfeatures:make_pipeline"\n')
    assert "there is no module src/mymodel/teamfeatures.py" in message


def test_a_factory_model_that_fails_to_fit_names_its_table_and_module():
    """A factory's estimator can still fail when fitted (a stateless transformer scikit-learn takes for unfitted)."""
    from sklearn.linear_model import LogisticRegression

    from pipeline.errors import TrainingError
    from pipeline.steps.train import _as_declared

    spec = model_specs.ModelSpec("Team", "", {"C": 0.5}, factory="features:make_pipeline")
    with pytest.raises(TrainingError) as caught:
        _as_declared(spec, LogisticRegression().predict, [[1.0]])  # a real NotFittedError (a ValueError)
    assert str(caught.value).startswith("the model 'Team' of [models.Team] factory = 'features:make_pipeline' "
                                        "cannot be trained (This LogisticRegression instance is not fitted yet.")
    assert str(caught.value).endswith("fix the estimator its function returns (src/mymodel/features.py) "
                                      "or the table's keys")


def test_a_team_modules_onnx_hook_is_called_at_release_and_what_it_imports_is_no_runtime_requirement(package, tmp_path):
    """register_onnx_converters() of a team module: called before the ONNX conversion; the skl2onnx it
    imports inside is not required by the installed package (it never calls the hook), an import outside is."""
    from pipeline.steps import team_code
    from pipeline.steps.requirements import source_imports

    name, write = package
    folder = tmp_path / "src" / name
    write("features", """
        import numpy
        CALLED = []

        def register_onnx_converters():
            import skl2onnx
            from skl2onnx.algebra import onnx_ops
            CALLED.append(skl2onnx.__name__)
        """)
    write("helpers", "import json\n")
    assert team_code.register_onnx_converters(name, folder) == ["features.py"]
    assert importlib.import_module(f"{name}.features").CALLED == ["skl2onnx"]
    assert source_imports([folder / "features.py", folder / "helpers.py"]) == {"numpy", "json"}
    write("outside", "import skl2onnx\n\ndef register_onnx_converters():\n    pass\n")
    assert "skl2onnx" in source_imports([folder / "outside.py"])
    write("broken", "def register_onnx_converters():\n    raise ValueError('no converter today')\n")
    with pytest.raises(team_code.TeamHookError, match=rf"src/{name}/broken.py: importing it or its "
                                                        r"register_onnx_converters\(\) raised ValueError: no converter today"):
        team_code.register_onnx_converters(name, folder)
