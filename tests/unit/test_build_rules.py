from pipeline.steps.build import expected_sdist_files, expected_wheel_files, model_card

ENV = {"python": "3.11.7", "scikit-learn": "1.9.1", "numpy": "2.4.6", "scipy": "1.17.1",
       "pandas": "3.1.1", "joblib": "1.6.0"}


def test_model_card_has_a_metrics_table():
    meta = {"SVC": {
        "estimator": "sklearn.svm.SVC",
        "metrics": {"accuracy": 0.8, "roc_auc": 0.85, "f1": 0.7, "log_loss": 0.44,
                    "cv_accuracy_mean": 0.79, "cv_accuracy_std": 0.02},
        "data": {"tag": "titanic", "source": "openml-titanic", "rows": 1309, "sha256": "ab" * 32,
                 "target": "survived", "split": {"test_size": 0.25, "seed": 0}},
        "training_environment": ENV,
        "input_schema": {"columns": [{"name": "age"}, {"name": "sex"}]},
    }}
    card = model_card("1.1.1+titanic", meta)
    assert card.startswith("# mymodel 1.1.1+titanic")
    assert "| SVC | `sklearn.svm.SVC` | 0.8000 | 0.8500 | 0.7000 | 0.4400 | 0.7900 ± 0.0200 |" in card
    assert "Data tag: `titanic`" in card and "columns: age, sex" in card


def test_expected_contents_hold_no_caches_training_code_or_secrets():
    files = expected_wheel_files("1.1.1+titanic", ["SVC"]) + expected_sdist_files("1.1.1+titanic", ["SVC"])
    assert "mymodel/models/SVC/model.joblib" in files
    assert "mymodel-1.1.1+titanic/src/mymodel/models/SVC/metadata.json" in files
    for forbidden in ("__pycache__", "pipeline/", "credentials", "htpasswd", "index/", ".pyc"):
        assert not [f for f in files if forbidden in f], forbidden
