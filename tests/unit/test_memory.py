"""A big release's memory (issue 33): what one step frees, the next takes (pipeline/memory.py), the rows
are held once while the models are fitted (pipeline/steps/train.py, train_cache.py), and the bench counts
every process of the release at once (benchmarks/model_scale.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import weakref

import pytest

from benchmarks.model_scale import peak_rss_run
from pipeline.config import DEFAULT_MODELS, load_dataset_config
from pipeline.steps import model_specs, train
from pipeline.steps.data import load_dataset
from pipeline.steps.data_input import fingerprint
from pipeline.steps.train_cache import Reuse
from tests.helpers import REPO

TITANIC = load_dataset_config()
# Reads a Parquet frame of 10 float columns, lets it go, then allocates as much with numpy: how far the
# process's peak RSS rises above the reading's (MB). argv: on|off (pipeline.memory), the Parquet file.
REUSE = """
import json, sys
from pathlib import Path
def peak():
    return [int(l.split()[1]) >> 10 for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]
if sys.argv[1] == 'on':
    from pipeline.memory import return_freed_memory
    return_freed_memory()
import numpy as np, pandas as pd
from pipeline.steps import frames
path = Path(sys.argv[2])
rng = np.random.default_rng(0)
frames.write_parquet(pd.DataFrame({f'c{i}': rng.random(1_000_000) for i in range(10)}), path)
frame = frames.read_parquet([path])
size = int(frame.memory_usage(deep=True).sum()) >> 20
del frame
before = peak()
arrays = [np.ones(1 << 20) for _ in range(size // 8)]
print(json.dumps({'frame_mb': size, 'grown_mb': peak() - before}))
"""


def _reuse_growth(how: str, tmp_path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    done = subprocess.run([sys.executable, "-c", REUSE, how, tmp_path / f"{how}.parquet"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_frame_read_from_parquet_and_freed_is_memory_numpy_takes_again(tmp_path):
    without, with_ = _reuse_growth("off", tmp_path), _reuse_growth("on", tmp_path)
    assert without["grown_mb"] > without["frame_mb"] / 2, without  # Arrow's pool kept it: numpy asked for more
    assert with_["grown_mb"] < with_["frame_mb"] / 4, with_


def test_every_pipeline_command_sets_the_allocators_before_it_runs():
    code = ("import os, sys\nimport pipeline.__main__ as cli\n"
            "cli.run = lambda args: print(os.environ.get('ARROW_DEFAULT_MEMORY_POOL'), args.command) or 0\n"
            "sys.exit(cli.main(['release']))\n")
    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "system release", done.stdout + done.stderr


def test_a_file_sources_frame_is_let_go_once_the_training_rows_are_made_and_read_again_when_needed():
    data = fingerprint(TITANIC)
    reuse = Reuse(None, {}, {})
    read = reuse.data(data, TITANIC)
    held = weakref.ref(read.frame)
    dataset = reuse.dataset(data, TITANIC)
    del read
    assert held() is None  # only the training rows stay
    again = reuse.data(data, TITANIC)  # the data package's: read again, the same frame
    assert again.sha256 == dataset.sha256 and len(again.frame) == dataset.rows


def test_a_team_loaders_rows_are_kept_they_cannot_be_read_again(team_package):
    import dataclasses

    from pipeline.steps.data import loaded_input

    team_package.write("data", """
        from pipeline.steps import sources

        def load():
            return sources.read_source("openml-titanic")
    """)
    config = dataclasses.replace(TITANIC, source="data:load")
    data = loaded_input(config)
    reuse = Reuse(None, {}, {})
    reuse.dataset(data, config)
    assert reuse.data(data, config) is data.read


def test_the_rows_as_read_are_not_held_while_the_models_are_fitted(monkeypatch):
    seen = []
    fitted = train.fitted

    def fitted_while_watching(*args, **kwargs):
        seen.append(held() is None)
        return fitted(*args, **kwargs)

    monkeypatch.setattr(train, "fitted", fitted_while_watching)
    passed = [load_dataset(TITANIC)]
    held = weakref.ref(passed[0].frame)
    models = train.train(passed.pop(), TITANIC, only=[DEFAULT_MODELS[0].name])  # the caller keeps nothing of it
    assert seen == [True]
    split = models[0].metadata["data"]["split"]
    assert models[0].metadata["data"]["rows"] == split["train_rows"] + split["test_rows"] == 1309


def test_the_bench_counts_every_process_of_a_command_at_once(tmp_path):
    # 60 MB in the parent and 100 MB in its child, alive together: the tree's peak holds both
    code = ("import numpy, subprocess, sys\nparent = numpy.ones(60 << 17)\n"
            "subprocess.run([sys.executable, '-c', 'import numpy, time; child = numpy.ones(100 << 17); "
            "time.sleep(1)'], check=True)\n")
    _, largest, _ = peak_rss_run([sys.executable, "-c", code], dict(os.environ), REPO, tmp_path)
    _, tree, _ = peak_rss_run([sys.executable, "-c", code], dict(os.environ), REPO, tmp_path, tree=True)
    assert largest < 160 < tree, (largest, tree)
    assert tree - largest > 40


@pytest.mark.parametrize("command", [[sys.executable, "-c", "import sys; sys.exit(3)"]])
def test_the_bench_wrapper_still_reports_a_failed_command(command, tmp_path):
    from benchmarks.servers import BenchError

    with pytest.raises(BenchError, match="exited 3"):
        peak_rss_run(command, dict(os.environ), REPO, tmp_path, tree=True)


HGB = model_specs.ModelSpec("Boosted", "HistGradientBoostingClassifier", {"max_iter": 5, "random_state": "seed"})
WITH_HGB = dataclasses.replace(TITANIC, models=(*TITANIC.models, HGB))


@pytest.fixture(scope="module")
def titanic_split():
    return train.split(load_dataset(TITANIC), TITANIC)


@pytest.mark.parametrize("spec", WITH_HGB.models, ids=lambda spec: spec.name)
def test_a_fit_that_lets_the_rows_go_fits_what_pipeline_fit_fits_byte_for_byte(spec, titanic_split):
    X_train, _, y_train, _ = titanic_split
    estimator = spec.build(WITH_HGB.seed)
    handed = [X_train.copy()]
    lean = train.fit_letting_go(train.make_pipeline(estimator, WITH_HGB), handed, y_train)
    assert handed == []
    assert pickle.dumps(lean) == pickle.dumps(train.make_pipeline(estimator, WITH_HGB).fit(X_train, y_train))


def test_the_rows_handed_over_are_gone_before_the_estimator_fits(titanic_split):
    X_train, _, y_train, _ = titanic_split
    pipeline = train.make_pipeline(HGB.build(0), WITH_HGB)
    handed = [X_train.copy()]
    held = weakref.ref(handed[0])
    estimator, seen = pipeline.steps[-1][1], []
    fit = estimator.fit

    def fit_while_watching(X, y):
        seen.append(held() is None)
        return fit(X, y)

    estimator.fit = fit_while_watching
    train.fit_letting_go(pipeline, handed, y_train)
    assert seen == [True]


@pytest.mark.parametrize("spec", [TITANIC.models[0], HGB], ids=lambda spec: spec.name)
def test_folds_that_let_their_rows_go_score_as_cross_val_score(spec, titanic_split):
    from sklearn.model_selection import StratifiedKFold

    X_train, _, y_train, _ = titanic_split
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = {letting_go: train.cross_validated(spec, train.make_pipeline(spec.build(0), WITH_HGB), X_train, y_train,
                                                folds, "accuracy", 0, letting_go=letting_go)
              for letting_go in (False, True)}
    assert scores[True].tolist() == scores[False].tolist()


def test_without_workers_the_folds_run_first_and_the_last_fit_takes_the_training_rows(monkeypatch):
    events, held = [], []
    fitted, cross_validated = train.fitted, train.cross_validated

    def fitted_while_watching(spec, estimator, X, *args, **kwargs):
        held.append(weakref.ref(X[0] if isinstance(X, list) else X))
        result = fitted(spec, estimator, X, *args, **kwargs)
        events.append(("fit", isinstance(X, list), held[-1]() is None))
        return result

    def cross_validated_watched(*args, **kwargs):
        events.append(("folds", kwargs["letting_go"]))
        return cross_validated(*args, **kwargs)

    names = [spec.name for spec in TITANIC.models[:2]]
    by_default = train.train(load_dataset(TITANIC), TITANIC, only=names)
    monkeypatch.setattr(train, "SERIAL_TRAINING_ROWS", 0)
    monkeypatch.setattr(train, "fitted", fitted_while_watching)
    monkeypatch.setattr(train, "cross_validated", cross_validated_watched)
    serial = train.train(load_dataset(TITANIC), TITANIC, only=names)
    # the folds' own fits come in lists too: only the final fits are counted here
    finals = [event for event in events if event[0] == "fit"][-2:]
    assert [event for event in events if event[0] == "folds"] == [("folds", True)] * 2
    assert events.index(("folds", True)) < events.index(finals[0])
    assert finals == [("fit", False, False), ("fit", True, True)]  # the last one took the rows and let them go
    for before, now in zip(by_default, serial, strict=True):
        assert pickle.dumps(now.pipeline) == pickle.dumps(before.pipeline)
        assert now.metadata["metrics"] == before.metadata["metrics"]
