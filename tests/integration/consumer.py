"""Runs inside a consumer venv: what an installed mymodel says and predicts, as JSON."""

import importlib.metadata
import json
import sys

import pandas as pd

import mymodel


def main() -> None:
    rows = json.load(open(sys.argv[1]))
    frame = pd.DataFrame(rows)
    report = {
        "version": mymodel.__version__,
        "distribution_version": importlib.metadata.version("mymodel"),
        "models": mymodel.list_models(),
        "loaded_from": mymodel.__file__,
        "probabilities": {},
        "labels": {},
    }
    for name in mymodel.list_models():
        model = mymodel.load(name)
        report["probabilities"][name] = model.predict_proba(frame)[:, 1].tolist()
        report["labels"][name] = mymodel.predict(name, rows)["prediction"].tolist()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
