"""make train: train and evaluate the models into src/<import name>/models."""

from __future__ import annotations

import argparse

from pipeline.config import load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.steps.train import metrics_table, save, train


def main(args: argparse.Namespace) -> int:
    config = load_dataset_config(tag=args.data)
    models = train(load_dataset(config, args.data_file), config)
    print(f"saved {len(models)} models to {save(models)}")
    print(metrics_table({m.name: m.metadata["metrics"] for m in models}))
    return 0
