"""The ONNX copies a real release leaves beside its models: recorded in the metadata, listed in the
manifest, not in the mymodel wheel, and predicting as the scikit-learn models on the held-out rows;
and onnx = "required" with a model that cannot convert, which stops the release before anything is published."""

import json
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest

from pipeline.steps import onnx_export
from pipeline.config import REGRESSION, load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.steps.train import split
from tests.helpers import assert_clean_error, commit, copy_repo, make
from tests.unit.test_onnx_export import TEAM_MODULE


HOW_TO_REGISTER = ("; register one in its module: def register_onnx_converters() calling "
                   "skl2onnx.update_registered_converter (docs/onnx.md)")

pytestmark = pytest.mark.integration



@pytest.mark.parametrize("fixture", ["released", "wine_release", "diabetes_release"])
def test_each_released_model_has_an_onnx_copy_that_predicts_as_scikit_learn(request, fixture):
    release = request.getfixturevalue(fixture)
    repo, output = release.repo, "".join(getattr(release, "outputs", [getattr(release, "output", "")]))
    version = getattr(release, "version", "1.1.2+titanic")
    config = load_dataset_config(repo / "dataset.toml")
    dataset = load_dataset(config, getattr(release, "csv", None))
    X_test = split(dataset, config)[1]
    models_dir = repo / "src" / "mymodel" / "models"
    with zipfile.ZipFile(repo / "dist" / f"mymodel-{version}-py3-none-any.whl") as wheel:
        manifest = json.loads(wheel.read("mymodel/models/manifest.json"))
        assert not [name for name in wheel.namelist() if name.endswith(onnx_export.ONNX_FILE)]
    names = sorted(p.name for p in models_dir.iterdir() if p.is_dir())
    assert names == sorted(spec.name for spec in config.models)
    for name in names:
        record = json.loads((models_dir / name / "metadata.json").read_text())["onnx"]
        onnx_file = models_dir / name / onnx_export.ONNX_FILE
        assert record["status"] == "converted", (name, record)
        assert record["rows_checked"] == len(X_test) and record["sha256"] == onnx_export.sha256_file(onnx_file)
        assert manifest["onnx"][f"{name}/{onnx_export.ONNX_FILE}"] == record["sha256"]
        assert f"onnx: {name} converted ({len(X_test)} held-out rows agree" in output, output
        pipeline = joblib.load(models_dir / name / "model.joblib")
        session = onnx_export.session(onnx_file.read_bytes())
        got = session.run(None, onnx_export.feed(X_test, record["inputs"]))
        assert [i.name for i in session.get_inputs()] == list(X_test.columns)
        if config.task == REGRESSION:
            expected = pipeline.predict(X_test)
            assert np.max(np.abs(got[0].ravel() - expected) / np.maximum(np.abs(expected), 1)) <= 1e-6, name
        else:
            assert list(got[0]) == list(pipeline.predict(X_test)), name
            np.testing.assert_allclose(got[1], pipeline.predict_proba(X_test), atol=1e-5, err_msg=name)


def test_onnx_required_with_a_model_that_cannot_convert_fails_cleanly_and_make_diff_names_the_loss(released, tmp_path):
    repo = copy_repo(tmp_path / "repo", released.repo)
    (repo / "src" / "mymodel" / "features.py").write_text(TEAM_MODULE)
    config = repo / "dataset.toml"
    team_model = '[models.LogisticRegression]\nfactory = "features:logistic"\n'
    config.write_text(config.read_text().split("\n[models.")[0].replace(
        "\n[release]\n", '\n[release]\nonnx = "required"\n') + "\n" + team_model)
    commit(repo, "the LogisticRegression table becomes a factory with a custom transformer; ONNX required")
    packages = Path(released.env["INDEX_DIR"])
    before = sorted(p.name for p in packages.iterdir())

    refused = make(repo, "release", released.env, "BUMP=patch", check=False)
    assert_clean_error(refused, "Error: the model 'LogisticRegression' does not convert to ONNX (skl2onnx has no "
                                f"converter for mymodel.features.LogFare{HOW_TO_REGISTER}), and [release] onnx = "
                                "\"required\" in dataset.toml; make the model convertible")
    assert "onnx: LogisticRegression not converted: skl2onnx has no converter for mymodel.features.LogFare" \
        in refused.stdout
    assert sorted(p.name for p in packages.iterdir()) == before
    assert not (repo / "dist").exists() and not (repo / "src" / "mymodel" / "models").exists()

    config.write_text(config.read_text().replace('onnx = "required"', 'onnx = "optional"'))
    commit(repo, "ONNX optional")
    make(repo, "train", released.env)
    record = json.loads((repo / "src/mymodel/models/LogisticRegression/metadata.json").read_text())["onnx"]
    assert record == {"status": "not converted",
                      "reason": f"skl2onnx has no converter for mymodel.features.LogFare{HOW_TO_REGISTER}"}
    assert not (repo / "src/mymodel/models/LogisticRegression" / onnx_export.ONNX_FILE).exists()
    diff = make(repo, "diff", released.env, "A=1.1.2+titanic").stdout
    assert ("LogisticRegression: ONNX converted -> not converted (skl2onnx has no converter for "
            f"mymodel.features.LogFare{HOW_TO_REGISTER})") in diff, diff
