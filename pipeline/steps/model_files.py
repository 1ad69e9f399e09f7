"""The trained models as files: ``src/<import name>/models/<Name>/`` holds model.joblib, model.onnx (when it
converted), evaluation.json and metadata.json, and ``metrics.json`` all models' metrics side by side; written all or nothing.

Apart from pipeline/steps/train.py so that what reads or writes these files (the build, a release whose
models all come from the cache) does not import scikit-learn.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import MODELS_DIR
from pipeline.errors import RequirementError, TrainingError
from pipeline.package.own_package import contract
from pipeline.steps import requirements
from pipeline.steps.evaluation import EVALUATION_FILE
from pipeline.steps.onnx_export import ONNX_FILE

SHOWN_METRICS = contract.SHOWN_METRICS

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"  # all models' metrics side by side, at the top of models/


@dataclass(frozen=True)
class TrainedModel:
    name: str
    pipeline: Any | None  # None: not unpickled (a model from the cache: fitted() loads it)
    metadata: dict
    onnx: bytes | None = None  # model.onnx, when it converted and agrees with the pipeline (metadata["onnx"])
    evaluation: dict | None = None  # evaluation.json: the numbers of its figures (pipeline/steps/evaluation.py)
    files: dict[str, Path] = field(default_factory=dict)  # model.joblib, evaluation.json (and model.onnx) as the cache keeps them

    def fitted(self) -> Any:
        """The fitted pipeline; a cached model's is unpickled from the file the cache checked."""
        if self.pipeline is not None:
            return self.pipeline
        import joblib

        return joblib.load(self.files[MODEL_FILE])


def save(models: list[TrainedModel], models_dir: Path = MODELS_DIR) -> Path:
    """Write every model and its metadata, replacing the previous set only when all are written."""
    if not models:
        raise TrainingError("no model was trained; declare one in dataset.toml ([models.<Name>])")
    staging = models_dir.with_name(models_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for model in models:
            folder = staging / model.name
            folder.mkdir(parents=True)
            if model.files:  # from the cache: its files as they were written, its metadata complete
                for name, stored in model.files.items():
                    shutil.copyfile(stored, folder / name)
            else:
                import joblib

                # compress=3 keeps the RandomForest small; zlib output is deterministic.
                joblib.dump(model.pipeline, folder / MODEL_FILE, compress=3)
                if model.onnx is not None:
                    (folder / ONNX_FILE).write_bytes(model.onnx)
                if model.evaluation is not None:
                    write_json(folder / EVALUATION_FILE, model.evaluation)
                record_model_libraries(model.metadata, folder / MODEL_FILE)
            write_json(folder / METADATA_FILE, model.metadata)
        write_json(staging / METRICS_FILE, {m.name: m.metadata["metrics"] for m in models})
    except RequirementError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise TrainingError(f"cannot save the trained models to {staging} ({exc.strerror}); "
                            "free some space or make the checkout writable, then run again") from None
    old = models_dir.with_name(models_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if models_dir.exists():
        models_dir.rename(old)
    staging.rename(models_dir)
    shutil.rmtree(old, ignore_errors=True)
    return models_dir


def record_model_libraries(metadata: dict, path: Path) -> None:
    """Add the version of every other distribution the saved pickle imports (a third-party estimator's,
    e.g. lightgbm) to the model's training_environment: the build requires it in that version's range."""
    environment = metadata["training_environment"]
    needed = requirements.model_distributions(path, f"the model {metadata['name']!r}")
    extra = {name: requirements.installed_version(name) for name in needed if name not in environment}
    metadata["training_environment"] = {**environment, **extra}


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    """Each model's headline metrics, those of its task (the keys it has), then those of [evaluation] metrics."""
    shown = [key for task in SHOWN_METRICS.values() for key, _ in task]
    names = [key for key in shown if any(key in values for values in metrics.values())]
    names += sorted({key for values in metrics.values() for key in values
                     if key not in shown and not key.startswith("cv_")})
    width = max(24, *(len(model) + 2 for model in metrics))
    widths = [max(18, len(n) + 2) for n in names]
    lines = [f"{'model':<{width}}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths))]
    for model, values in metrics.items():
        lines.append(f"{model:<{width}}" + "".join(f"{values.get(n, float('nan')):>{w}.4f}" for n, w in zip(names, widths)))
    return "\n".join(lines)
