"""Small valid releases for the registry page's tests: a wheel with the pipeline's JSON files and an sdist.

No model inside (the page never unpickles): the manifest names a model file's sha256
the way a real build does, and each model's metadata.json carries metrics and schema.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

SCHEMA = {"columns": [{"name": "age", "dtype": "float64", "allows_missing": True},
                      {"name": "sex", "dtype": "category", "allows_missing": True, "categories": ["female", "male"]}],
          "unseen_categories": "ignore"}


def model_metadata(name: str, accuracy: float, seed: int = 0) -> dict:
    return {"name": name, "estimator": f"sklearn.fake.{name}", "classes": ["0", "1"], "input_schema": SCHEMA,
            "params": {"C": 1.0},
            "metrics": {"accuracy": accuracy, "roc_auc": round(accuracy + 0.05, 6), "f1": 0.7},
            "data": {"source": "synthetic", "sha256": "ab" * 32, "rows": 100, "tag": "test", "target": "y",
                     "split": {"seed": seed, "test_size": 0.25}},
            "training_environment": {"python": "3.11.7", "scikit-learn": "1.9.1"},
            "git": {"commit": "c0ffee" * 6 + "abcd", "dirty": False}}


def release_files(directory: Path, version: str, accuracies: dict[str, float], card: str = "# card\n",
                  bump: dict | None = None, seed: int = 0) -> tuple[Path, Path]:
    """Write ``mymodel-<version>`` wheel and sdist into ``directory``; returns (wheel, sdist)."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"mymodel-{version}-py3-none-any.whl"
    info = f"mymodel-{version}.dist-info"
    manifest = {"version": version, "files": {f"{name}/model.joblib": f"{version}-{name}".encode().hex()[:64].ljust(64, "0")
                                             for name in accuracies},
                "release": {"bump": bump} if bump else {}}
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mymodel/__init__.py", f"__version__ = '{version}'\n")
        archive.writestr("mymodel/models/manifest.json", json.dumps(manifest))
        for name, accuracy in accuracies.items():
            archive.writestr(f"mymodel/models/{name}/metadata.json", json.dumps(model_metadata(name, accuracy, seed)))
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: mymodel\nVersion: {version}\n"
                                             f"Summary: test models\nDescription-Content-Type: text/markdown\n\n{card}")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    sdist = directory / f"mymodel-{version}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        content = f"Metadata-Version: 2.1\nName: mymodel\nVersion: {version}\n".encode()
        entry = tarfile.TarInfo(f"mymodel-{version}/PKG-INFO")
        entry.size = len(content)
        archive.addfile(entry, io.BytesIO(content))
    return wheel, sdist
