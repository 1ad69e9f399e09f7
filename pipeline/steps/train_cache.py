"""A release trains only the models whose inputs changed: the others come from the cache (pipeline/cache.py).

A model's key is the sha256 of everything its fit, scores, metadata and ONNX copy follow
from: the data's bytes and the source recorded, every setting of dataset.toml but the other
models' tables (the [models.<Name>] table of this one instead), the libraries' names the
other tables add to every model's training_environment, the package name (pickles name
classes by module path), every installed distribution's version, Python's, and the code of
pipeline/ and of the package (the team's modules included). Training is deterministic for
these (make verify rebuilds a release byte for byte from them), so a hit is what training
would write again: model.joblib, model.onnx and evaluation.json as they were written, the metadata with this
run's commit. A hit's table was built and trained once with the same code and libraries, so
a release checks only the tables of the models it trains (config.check_models) before anything runs.
``make verify`` takes no model or conversion from the cache: it trains and converts from scratch.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import cache as work_cache
from pipeline.cache import Cache
from pipeline.config import IMPORT_NAME, PACKAGE, DatasetConfig
from pipeline.steps import model_specs, onnx_export, provenance
from pipeline.steps.data_input import DataInput
from pipeline.steps.data_package import PIN_KEY
from pipeline.steps.evaluation import EVALUATION_FILE
from pipeline.steps.model_files import MODEL_FILE, ONNX_FILE, TrainedModel

if TYPE_CHECKING:
    from pipeline.steps.data import Data, Dataset

CACHE_KIND = "model"


def model_keys(config: DatasetConfig, data: DataInput) -> dict[str, str]:
    """Each model's key, by name."""
    settings = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
                if field.name not in ("models", "path")}
    shared = {"work": CACHE_KIND, "data": {"sha256": data.sha256, "source": data.source}, "settings": settings,
              "libraries": model_specs.libraries(config.models), "package": [PACKAGE, IMPORT_NAME],
              "environment": work_cache.environment(), "code": work_cache.code()}
    return {spec.name: work_cache.digest({**shared, "model": dataclasses.asdict(spec)}) for spec in config.models}


@dataclasses.dataclass
class Reuse:
    """The models a release takes from the cache, by name, and the keys of all of them."""

    cache: Cache | None
    keys: dict[str, str]
    hits: dict[str, work_cache.Entry]
    _held: object = None  # the folder of the hits' files (hard links): removed with this object
    _data: Data | None = None

    @classmethod
    def look_up(cls, cache: Cache | None, config: DatasetConfig, data: DataInput | None) -> Reuse:
        """What the cache holds for ``data`` (None: not known yet, nothing reused), its files held for this run."""
        if not (cache and data):
            return cls(cache, {}, {})
        keys, held = model_keys(config, data), None
        with contextlib.suppress(OSError):
            held = cache.held()
        hits = {name: entry for name, key in keys.items()
                if (entry := _usable(cache.get(CACHE_KIND, key, Path(held.name) if held else None)))}
        return cls(cache, keys, hits, held)

    def to_train(self, config: DatasetConfig) -> tuple[model_specs.ModelSpec, ...]:
        """The tables of the models to fit: those to build (config.check_models) before anything runs."""
        return tuple(spec for spec in config.models if spec.name not in self.hits)

    def train(self, data: DataInput, config: DatasetConfig, out=print) -> list[TrainedModel]:
        """Every model of dataset.toml, in its order: the hits as they were, the others trained now."""
        missing = [spec.name for spec in config.models if spec.name not in self.hits]
        trained = {}
        if missing:
            from pipeline.steps.train import train  # scikit-learn: imported only when a model is fitted

            trained = {m.name: m for m in train(self.dataset(data, config), config, only=missing, cache=self.cache)}
        git = provenance.git_state() if self.hits else {}
        models = []
        for spec in config.models:
            entry = self.hits.get(spec.name)
            if entry is None:
                models.append(trained[spec.name])
                continue
            metadata = {**entry.document["metadata"], "git": git}
            out(f"trained before: {spec.name} (the same data, settings, libraries and code; cache key "
                f"{self.keys[spec.name][:12]}): not fitted, scored or converted again")
            if onnx_export.METADATA_KEY in metadata:
                out(onnx_export.Exported(metadata[onnx_export.METADATA_KEY]).describe(spec.name))
            models.append(TrainedModel(spec.name, None, metadata, entry.read(ONNX_FILE) if ONNX_FILE in entry.files
                                       else None, files=dict(entry.files)))
        return models

    def data(self, data: DataInput, config: DatasetConfig) -> Data:
        """The data as read from its source, read once (pandas: imported only then)."""
        if self._data is None:
            from pipeline.steps.data import read_input

            self._data = read_input(data, config)
        return self._data

    def dataset(self, data: DataInput, config: DatasetConfig) -> Dataset:
        """The data's features and target, checked for training. The frame as read is let go then when its
        files can be read again (not a team loader's rows): held through training beside the training
        copy it was the largest part of a big release's memory; the data package, built after training,
        reads the files again (read_input checks they are still those fingerprinted)."""
        from pipeline.steps.data import checked

        dataset = checked(self.data(data, config), config)
        if data.read is None:
            self._data = None
        return dataset

    def remember(self, models: list[TrainedModel], models_dir: Path) -> None:
        """Keep the models trained in this run as ``save`` wrote them into ``models_dir``."""
        if not self.cache or not self.keys:
            return
        for model in models:
            if model.name in self.hits or model.name not in self.keys:
                continue
            folder = models_dir / model.name
            metadata = {key: value for key, value in model.metadata.items() if key != "git"}
            metadata["data"] = {key: value for key, value in metadata["data"].items() if key != PIN_KEY}
            files = {name: folder / name for name in (MODEL_FILE, ONNX_FILE, EVALUATION_FILE) if (folder / name).is_file()}
            if not self.cache.put(CACHE_KIND, self.keys[model.name], {"metadata": metadata}, files):
                print(f"note: the release cache could not be written ({self.cache.write_problem}); "
                      "the next release trains these models again")
                break
        self.cache.prune()


def _usable(entry: work_cache.Entry | None) -> work_cache.Entry | None:
    """A model entry with its metadata and model file (and its ONNX file when the metadata says it converted)."""
    if (entry is None or not isinstance(entry.document.get("metadata"), dict) or MODEL_FILE not in entry.files
            or EVALUATION_FILE not in entry.files):
        return None
    metadata = entry.document["metadata"]
    record = metadata.get(onnx_export.METADATA_KEY)
    converted = isinstance(record, dict) and record.get("status") == onnx_export.CONVERTED
    if not isinstance(metadata.get("data"), dict) or converted != (ONNX_FILE in entry.files):
        return None
    if converted and entry.sha256[ONNX_FILE] != record.get("sha256"):
        return None
    return entry
