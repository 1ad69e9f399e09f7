"""The names of the release's ONNX distribution, ``<name>-onnx`` (pipeline/steps/onnx_package.py builds it).

Standard library only: the index commands (make yank, make lock, make channels) import it without
the training stack.
"""

from __future__ import annotations

from pipeline.package.package_name import IMPORT_NAME, PACKAGE

ONNX_SUFFIX = "onnx"
TWIN = f"{PACKAGE}-{ONNX_SUFFIX}"
TWIN_IMPORT = f"{IMPORT_NAME}_{ONNX_SUFFIX}"


def twin_wheel_name(version: str) -> str:
    return f"{TWIN_IMPORT}-{version}-py3-none-any.whl"


def is_twin_file(filename: str) -> bool:
    """Is ``filename`` a file of the -onnx distribution (its wheel)?"""
    return filename.startswith(f"{TWIN_IMPORT}-")
