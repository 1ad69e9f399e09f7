"""The release's second distribution, ``<name>-onnx`` at the same version: the models as ONNX graphs.

A model the conversion step (``"onnx": {"status": "converted", "sha256": ...}`` in its
metadata.json, ``model.onnx`` beside ``model.joblib``; pipeline/steps/onnx_export.py, docs/onnx.md) turned into ONNX ships in it with its
metadata; one that did not is listed in its manifest with the reason (``not_converted``).
It requires onnxruntime and numpy only: the runtime is onnx_runtime/ (this repository's
template), staged as ``<import name>_onnx/`` beside copies of the package's own store,
schema, errors, contract, environment and __main__ modules, so both distributions check
files and input rows with the same code. Built from the commit's timestamps with a fixed
umask, like the main wheel: rebuilding gives the same bytes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from pipeline.views import markdown_text as md
from pipeline.config import PACKAGE, PACKAGE_DIR, REPO
from pipeline.errors import BuildError
from pipeline.steps.onnx_export import METADATA_KEY, ONNX_FILE, packaged_files
from pipeline.package.onnx_names import TWIN, TWIN_IMPORT, twin_wheel_name
from pipeline.package.own_package import onnx_external_data, store
from pipeline.steps.backend import normalise_modes, run_backend
from pipeline.steps.requirements import installed_version, requirement
from pipeline.steps.model_files import METADATA_FILE, MODEL_FILE, write_json
from pipeline.steps.versioning import version_file_text

MANIFEST_FILE = "manifest.json"
TEMPLATE_DIR = REPO / "onnx_runtime"
TEMPLATE_SOURCES = ("__init__.py", "onnx_model.py", "external_data.py")
# The package's own modules the runtime shares (checks, errors, the command line), copied as they are.
SHARED_SOURCES = ("store.py", "schema.py", "errors.py", "contract.py", "environment.py", "__main__.py", "py.typed")


def plan(models_dir: Path, metadata: dict[str, dict]) -> tuple[list[str], dict[str, str]]:
    """(the models that ship as ONNX, {model: why not} for the others); a model.onnx that is not the
    file its training recorded stops the build (pipeline/steps/onnx_export.py)."""
    files = packaged_files(models_dir, metadata)
    converted = [name for name in metadata if f"{name}/{ONNX_FILE}" in files]
    missing = {}
    for name, meta in metadata.items():
        if name not in converted:
            record = meta.get(METADATA_KEY)
            missing[name] = (f"{record.get('status')}: {record.get('reason')}" if isinstance(record, dict)
                             else 'not converted at training ([release] onnx = "off", or trained before ONNX)')
    return converted, missing


def summary(built_twin: Path | None, version: str, models_dir: Path, names: list[str]) -> str:
    """One line for the release's output: which models ship as ONNX in <name>-onnx, which do not and why."""
    metadata = {n: json.loads((models_dir / n / METADATA_FILE).read_text(encoding="utf-8")) for n in names}
    converted, missing = plan(models_dir, metadata)
    without = "; ".join(f"{name} ({reason})" for name, reason in missing.items())
    if built_twin is None:
        return f"ONNX: no model converted, so no {TWIN} {version} is published ({without})"
    return (f"ONNX: {TWIN} {version} ships {', '.join(converted)}"
            + (f"; without ONNX (in {PACKAGE} only): {without}" if missing else ""))


def requires(metadata: dict[str, dict]) -> dict[str, str]:
    """numpy in the range the models were trained with, onnxruntime in the major series the release checked with."""
    trained = next(iter(metadata.values())).get("training_environment", {})
    return {"numpy": requirement("numpy", trained.get("numpy") or installed_version("numpy")),
            "onnxruntime": requirement("onnxruntime", installed_version("onnxruntime"))}


def build_twin(version: str, out_dir: Path, models_dir: Path, metadata: dict[str, dict], release_notes: dict,
               epoch: int, tag: str | None) -> Path | None:
    """Build ``<name>-onnx`` ``version`` into ``out_dir``; None (and nothing built) when no model converted.
    ``metadata``: every model's metadata.json as the main wheel ships it."""
    converted, missing = plan(models_dir, metadata)
    if not converted:
        return None
    for name in converted:
        refuse_external_data(models_dir / name / ONNX_FILE)
    with tempfile.TemporaryDirectory(prefix=f"{TWIN_IMPORT}-build-") as tmp:
        stage = Path(tmp)
        package = stage / "src" / TWIN_IMPORT
        package.mkdir(parents=True)
        for name in TEMPLATE_SOURCES:
            shutil.copy2(TEMPLATE_DIR / name, package / name)
        for name in SHARED_SOURCES:
            shutil.copy2(PACKAGE_DIR / name, package / name)
        (package / "version.py").write_text(version_file_text(version))
        for name in converted:
            (package / "models" / name).mkdir(parents=True)
            shutil.copy2(models_dir / name / ONNX_FILE, package / "models" / name / ONNX_FILE)
            write_json(package / "models" / name / METADATA_FILE, metadata[name])
        needed = requires(metadata)
        manifest = {
            "version": version, "data_tag": tag, "requires": needed, "release": release_notes,
            "not_converted": missing, "scikit_learn_package": PACKAGE,
            "files": {str(p.relative_to(package / "models")): store.sha256_file(p)
                      for p in sorted((package / "models").rglob("*")) if p.is_file()},
        }
        (package / "models" / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (stage / "MODEL_CARD.md").write_text(card(version, metadata, converted, missing))
        (stage / "pyproject.toml").write_text(pyproject(version, needed))
        normalise_modes(stage)
        run_backend(stage, out_dir, epoch, version, kinds=("wheel",))
    wheel = out_dir / twin_wheel_name(version)
    if not wheel.is_file():
        raise BuildError(f"the build did not write {wheel}; run python -m build --wheel in a staged copy to see why")
    check_twin_contents(wheel, version, converted)
    return wheel


def refuse_external_data(path: Path) -> None:
    """A model.onnx whose tensors lie outside it (ONNX external data) is never published: the runtime
    refuses it too (onnx_runtime/external_data.py), and onnxruntime would read it from a consumer's folder."""
    try:
        outside = onnx_external_data.external_tensor(path.read_bytes())
    except onnx_external_data.NotAModel as exc:
        raise BuildError(f"{path} is not an ONNX model ({exc}); run make train (make release does it)") from None
    if outside is not None:
        raise BuildError(f"{path} keeps the tensor {outside!r} outside the file (ONNX external data); {TWIN} "
                         "publishes self-contained models only: keep every tensor inside (a converter writing "
                         "external data), then run make train")


def expected_twin_files(version: str, converted: list[str]) -> list[str]:
    sources = [f"{TWIN_IMPORT}/{f}" for f in (*TEMPLATE_SOURCES, *SHARED_SOURCES, "version.py")]
    models = [f"{TWIN_IMPORT}/models/{MANIFEST_FILE}"]
    models += [f"{TWIN_IMPORT}/models/{n}/{f}" for n in converted for f in (METADATA_FILE, ONNX_FILE)]
    info = [f"{TWIN_IMPORT}-{version}.dist-info/{f}"
            for f in ("METADATA", "WHEEL", "entry_points.txt", "top_level.txt", "RECORD")]
    return sorted(sources + models + info)


def check_twin_contents(wheel: Path, version: str, converted: list[str]) -> None:
    """The exact file list: no pickle, no training code."""
    with zipfile.ZipFile(wheel) as archive:
        actual = sorted(archive.namelist())
    expected = expected_twin_files(version, converted)
    if actual != expected:
        extra, absent = sorted(set(actual) - set(expected)), sorted(set(expected) - set(actual))
        raise BuildError(f"the {TWIN} wheel for {version} has unexpected contents (extra: {extra}, missing: {absent}); "
                         "fix TEMPLATE_SOURCES or SHARED_SOURCES in pipeline/steps/onnx_package.py")
    if any(name.endswith(MODEL_FILE) for name in actual):
        raise BuildError(f"the {TWIN} wheel for {version} holds a pickle; it must hold ONNX files only")


def pyproject(version: str, needed: dict[str, str]) -> str:
    dependencies = ", ".join(json.dumps(f"{name}{spec}") for name, spec in needed.items())
    return f"""[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{TWIN}"
version = "{version}"
description = "The models of {PACKAGE} {version} as ONNX, run with onnxruntime (no scikit-learn)"
requires-python = ">=3.11"
license = "MIT"
classifiers = ["Programming Language :: Python :: 3", "Private :: Do Not Upload"]
dependencies = [{dependencies}]
readme = {{ file = "MODEL_CARD.md", content-type = "text/markdown" }}

[project.scripts]
{TWIN} = "{TWIN_IMPORT}.__main__:main"

[tool.setuptools]
include-package-data = false
packages = ["{TWIN_IMPORT}"]
package-dir = {{ "" = "src" }}

[tool.setuptools.package-data]
{TWIN_IMPORT} = ["py.typed", "models/{MANIFEST_FILE}", "models/*/{ONNX_FILE}", "models/*/{METADATA_FILE}"]
"""


def card(version: str, metadata: dict[str, dict], converted: list[str], missing: dict[str, str]) -> str:
    """The -onnx wheel's long description: which models it has, and why the others are not in it."""
    first = next(iter(metadata.values()))
    columns = md.one_line(", ".join(c["name"] for c in first["input_schema"]["columns"]))
    lines = [f"# {TWIN} {version}", "",
             f"The models of `{PACKAGE}=={version}` as ONNX graphs, run with onnxruntime: "
             f"`pip install {TWIN}=={version}` needs neither scikit-learn nor pandas.", "",
             "| model | ONNX |", "|---|---|"]
    lines += [f"| {md.text(name)} | yes (opset {metadata[name]['onnx'].get('opset', '?')}) |" for name in converted]
    lines += [f"| {md.text(name)} | no: {md.text(reason)} (use {PACKAGE}) |" for name, reason in missing.items()]
    lines += ["", "## Use", "", "```python", f"import {TWIN_IMPORT}", f"{TWIN_IMPORT}.list_models()",
              f"{TWIN_IMPORT}.predict({json.dumps(converted[0])}, rows)  # rows with columns: {columns}", "```", ""]
    return "\n".join(lines)
