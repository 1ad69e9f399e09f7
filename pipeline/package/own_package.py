"""The model package's own modules the pipeline uses as a library (its contract, store, ...),
imported by the configured name (src/<IMPORT_NAME>/), so renaming the package changes nothing here;
and the -onnx runtime's check for external data (onnx_runtime/external_data.py), loaded from its file
(the template's package is importable only once staged)."""

from __future__ import annotations

import importlib
import importlib.util

from pipeline.package.package_name import IMPORT_NAME
from index.settings import REPO

contract = importlib.import_module(f"{IMPORT_NAME}.contract")
errors = importlib.import_module(f"{IMPORT_NAME}.errors")
published = importlib.import_module(f"{IMPORT_NAME}.published")
store = importlib.import_module(f"{IMPORT_NAME}.store")


def _template_module(name: str):
    spec = importlib.util.spec_from_file_location(f"onnx_runtime_{name}", REPO / "onnx_runtime" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


onnx_external_data = _template_module("external_data")
