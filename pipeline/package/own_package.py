"""The model package's own modules the pipeline uses as a library (its contract, store, ...),
imported by the configured name (src/<IMPORT_NAME>/), so renaming the package changes nothing here."""

from __future__ import annotations

import importlib

from pipeline.package.package_name import IMPORT_NAME

contract = importlib.import_module(f"{IMPORT_NAME}.contract")
errors = importlib.import_module(f"{IMPORT_NAME}.errors")
published = importlib.import_module(f"{IMPORT_NAME}.published")
store = importlib.import_module(f"{IMPORT_NAME}.store")
