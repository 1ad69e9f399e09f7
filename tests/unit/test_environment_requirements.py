"""load() and validate check every requirement the build recorded, not only scikit-learn's."""

from __future__ import annotations

import importlib.metadata
import json

from tests.unit.test_store import METADATA, checkout, mymodel  # noqa: F401  (checkout is a fixture)

NUMPY = importlib.metadata.version("numpy")
REQUIRES = {"joblib": ">=1.0", "numpy": ">=99.0,<99.1", "made-up-dist-for-a-test": ">=4.7,<4.8"}


def with_requires(checkout, requires: dict) -> None:  # noqa: F811
    trained = {**METADATA, "training_environment": {"numpy": "99.0.1", "made-up-dist-for-a-test": "4.7.0"}}
    (checkout / "models" / "Tiny" / "metadata.json").write_text(json.dumps(trained))
    (checkout / "models" / "manifest.json").write_text(json.dumps({"files": {}, "requires": requires, "release": {}}))


def test_validate_names_each_missing_or_out_of_range_requirement_and_its_fix(checkout):  # noqa: F811
    with_requires(checkout, REQUIRES)
    result = mymodel(checkout, "-m", "mymodel", "validate", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    rows = {line.split()[0]: line.split()[-1] for line in result.stdout.splitlines()[1:4]}
    assert rows == {"joblib": "yes", "numpy": "NO", "made-up-dist-for-a-test": "NO"}
    assert "incompatible: numpy, made-up-dist-for-a-test;" in result.stdout
    assert (f"- these models were trained with numpy 99.0.1 and need numpy>=99.0,<99.1, but {NUMPY} is installed: "
            "pip install 'numpy>=99.0,<99.1', or pin a mymodel version trained with your numpy") in result.stdout
    assert ("- these models were trained with made-up-dist-for-a-test 4.7.0 and need made-up-dist-for-a-test>=4.7,<4.8, "
            "but it is not installed: pip install 'made-up-dist-for-a-test>=4.7,<4.8'") in result.stdout


def test_load_refuses_while_any_requirement_is_unmet_and_loads_when_all_are(checkout):  # noqa: F811
    with_requires(checkout, {"joblib": ">=1.0", "made-up-dist-for-a-test": ">=4.7,<4.8"})
    code = ("import mymodel\ntry:\n    mymodel.load('Tiny')\nexcept mymodel.EnvironmentMismatchError as exc:\n"
            "    print(exc)\nprint(mymodel.load('Tiny', check_environment=False))")
    out = mymodel(checkout, "-c", code).stdout.splitlines()
    assert out[0] == ("these models were trained with made-up-dist-for-a-test 4.7.0 and need "
                      "made-up-dist-for-a-test>=4.7,<4.8, but it is not installed: pip install "
                      "'made-up-dist-for-a-test>=4.7,<4.8', or pin a mymodel version trained with your "
                      "made-up-dist-for-a-test (or pass check_environment=False to load anyway)")
    assert out[1] == "{'fitted': True}"
    with_requires(checkout, {"joblib": ">=1.0", "numpy": f"=={NUMPY}"})
    assert mymodel(checkout, "-c", "import mymodel; print(mymodel.load('Tiny'))").stdout.strip() == "{'fitted': True}"


def test_a_requirement_that_is_no_version_range_is_one_error_line(checkout):  # noqa: F811
    with_requires(checkout, {"numpy": "not a range"})
    result = mymodel(checkout, "-m", "mymodel", "validate", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "requires numpy 'not a range', which is not a version range" in result.stderr
