"""The real MNIST (the four official IDX files), where the environment names their folder in
DIGITLAB_MNIST_ROOT (`.ci/run` sets it when a copy is at hand): the loader on the 70,000 images
with the official label counts and a cached second load, and one short real reproduction.
Without the files these tests skip; the synthetic stand-ins in test_data.py and
test_reproduction.py run everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import pipeline, runs_of, store
from digitlab.config import DataConfig
from digitlab.data import load_dataset

ROOT = os.environ.get("DIGITLAB_MNIST_ROOT", "")
pytestmark = [pytest.mark.timeout(600), pytest.mark.skipif(
    not (ROOT and (Path(ROOT) / "train-images-idx3-ubyte.gz").exists()),
    reason="the real MNIST is not at hand (set DIGITLAB_MNIST_ROOT to the folder of its four "
           "official IDX files)")]

# the label counts of the official files (LeCun, Cortes, Burges)
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_the_real_mnist_loads_with_the_official_counts_and_caches(tmp_path):
    cfg = DataConfig(name="mnist", root=ROOT, cache_dir=str(tmp_path / "cache"))
    first = load_dataset(cfg)
    assert first.x_train.shape == (60000, 784) and first.x_test.shape == (10000, 784)
    assert np.bincount(first.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(first.y_test).tolist() == TEST_COUNTS
    assert first.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert first.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert first.x_train.dtype == np.uint8 and first.x_train.max() == 255
    second = load_dataset(cfg)  # from the cache: memory-mapped, the same bytes and digest
    assert isinstance(second.x_train.base, np.memmap) or isinstance(second.x_train, np.memmap)
    assert second.digest == first.digest and np.array_equal(second.x_test, first.x_test)


def test_nielsen_ch1_trains_on_the_real_mnist(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "experiment=nielsen-ch1-30", f"data.root={ROOT}",
                    "trainer.epochs=3", "tracking.log_model=false", f"tracking.uri={uri}",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = runs_of(uri)[0]
    assert run.data.params["experiment_id"] == "nielsen-ch1-30"
    assert run.data.metrics["test_accuracy"] > 0.90  # Nielsen: ≈ 0.91–0.93 after 3 epochs
