"""Small valid releases for the registry page's tests: a wheel with the pipeline's JSON files and an sdist.

No model inside (the page never unpickles): the manifest names a model file's sha256
the way a real build does, and each model's metadata.json carries metrics and schema.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

from pipeline.steps.versioning import version_file_text

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
                  bump: dict | None = None, seed: int = 0, package: str = "mymodel",
                  figures: dict[str, dict[str, bytes]] | None = None, notes: dict | None = None,
                  per_class: dict[str, dict[str, float]] | None = None) -> tuple[Path, Path]:
    """Write ``<package>-<version>`` wheel and sdist into ``directory``; returns (wheel, sdist). ``figures``:
    model -> kind -> SVG bytes, listed in the manifest as a build lists them; ``notes``: more release notes;
    ``per_class``: every model's per-class metrics."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{package}-{version}-py3-none-any.whl"
    info = f"{package}-{version}.dist-info"
    manifest = {"version": version, "files": {f"{name}/model.joblib": f"{version}-{name}".encode().hex()[:64].ljust(64, "0")
                                             for name in accuracies},
                "release": {**({"bump": bump} if bump else {}), **(notes or {})}}
    if figures:
        manifest["figures"] = {name: {kind: f"{name}/figures/{kind}.svg" for kind in kinds}
                               for name, kinds in figures.items()}
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{package}/__init__.py", f"__version__ = '{version}'\n")
        archive.writestr(f"{package}/models/manifest.json", json.dumps(manifest))
        for name, accuracy in accuracies.items():
            metadata = model_metadata(name, accuracy, seed)
            if per_class:
                metadata["per_class"] = per_class
            archive.writestr(f"{package}/models/{name}/metadata.json", json.dumps(metadata))
        for name, kinds in (figures or {}).items():
            for kind, svg in kinds.items():
                archive.writestr(f"{package}/models/{name}/figures/{kind}.svg", svg)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
                                             f"Summary: test models\nDescription-Content-Type: text/markdown\n\n{card}")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel, small_sdist(directory, package, version)


def small_sdist(directory: Path, package: str, version: str) -> Path:
    """An sdist holding only its PKG-INFO: what makes a version complete on the registry page."""
    sdist = directory / f"{package}-{version}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        content = f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode()
        entry = tarfile.TarInfo(f"{package}-{version}/PKG-INFO")
        entry.size = len(content)
        archive.addfile(entry, io.BytesIO(content))
    return sdist


def renamed_wheel(wheel: Path, directory: Path, package: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A real released ``mymodel`` wheel as another team's model package (or another version of
    it): the package folder, the dist-info folder, METADATA's Name and Version, version.py, the
    manifest's version and RECORD (paths and hashes) rewritten; the models are the same bytes.
    ``requires``: more Requires-Dist lines (a version that adds a dependency)."""
    old_version = wheel.name.split("-")[1]
    old_info, new_info = f"mymodel-{old_version}.dist-info/", f"{package}-{version}.dist-info/"
    target = directory / f"{package}-{version}-py3-none-any.whl"
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as source:
        for name in source.namelist():
            content = source.read(name)
            if name.startswith("mymodel/"):
                name = package + name.removeprefix("mymodel")
            elif name.startswith(old_info):
                name = new_info + name.removeprefix(old_info)
            if name == f"{package}/version.py":  # mymodel.__version__ equals the distribution's version
                content = version_file_text(version).encode()
            elif name == f"{package}/models/manifest.json":
                manifest = json.loads(content)
                manifest["version"] = version
                content = json.dumps(manifest, indent=2).encode()
            elif name == new_info + "METADATA":
                content = re.sub(rb"(?m)^Name: .*$", f"Name: {package}".encode(), content, count=1)
                content = re.sub(rb"(?m)^Version: .*$", f"Version: {version}".encode(), content, count=1)
                added = "".join(f"Requires-Dist: {requirement}\n" for requirement in requires).encode()
                content = re.sub(rb"(?m)^Requires-Dist: ", lambda first: added + first[0], content, count=1)
            members[name] = content
    record = [f"{name},sha256={_urlsafe_digest(content)},{len(content)}"
              for name, content in members.items() if name != new_info + "RECORD"]
    members[new_info + "RECORD"] = ("\n".join(record + [f"{new_info}RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return target


def _urlsafe_digest(content: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
