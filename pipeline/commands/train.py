"""make train: train and evaluate the models into src/<import name>/models, from the configured
data, DATA_FILE=, or a published data package (DATA=<package>-data==X, or [dataset] source =
"<package>-data==X"), which the models then pin."""

from __future__ import annotations

import argparse
import dataclasses

from pipeline.commands.common import settings
from pipeline.config import load_dataset_config
from pipeline.indexes.connect import index_client
from pipeline.steps import data_package, versioning
from pipeline.steps.data import load_dataset
from pipeline.steps.train import metrics_table, save, train


def main(args: argparse.Namespace) -> int:
    wanted = data_package.parse_requirement(args.data)
    config = load_dataset_config(tag=versioning.parse(wanted).local if wanted else args.data)
    wanted = wanted or data_package.parse_requirement(config.source)
    if wanted:
        with data_package.recorded_package(index_client(settings(args)), wanted) as found:
            dataset = load_dataset(config, found.path)
            models = train(dataclasses.replace(dataset, source=str(found.metadata.get("source"))), config)
            data_package.pin(models, found.pin)
    else:
        models = train(load_dataset(config, args.data_file), config)
    print(f"saved {len(models)} models to {save(models)}")
    print(metrics_table({m.name: m.metadata["metrics"] for m in models}))
    return 0
