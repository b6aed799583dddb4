"""Published vs reproduced: the selection and aggregation logic on hand-made histories, the
shipped published curves, and reproduce.py on real processes (MNIST through a synthetic
stand-in of the official IDX files, since MNIST cannot be downloaded here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import pipeline, runs_of, store, write_idx_set, write_kaggle_csv
from digitlab.config import PublishedConfig
from digitlab.reproduction import TrainingRun, load_curve, reproduce, run_accuracy


def _run(seed=0, train=(), val=(), test=(), final_test=None):
    return TrainingRun(seed, {"train_accuracy": list(train), "val_accuracy": list(val),
                              "epoch_test_accuracy": list(test)},
                       {} if final_test is None else {"test_accuracy": final_test})


HISTORY = _run(val=[0.90, 0.95, 0.93, 0.95], test=[0.91, 0.96, 0.97, 0.94], final_test=0.94,
               train=[0.8, 0.9, 0.95, 0.99])


@pytest.mark.parametrize("split,selection,expected", [
    ("test", "best", 0.97), ("test", "final", 0.94), ("val", "best", 0.95), ("val", "final", 0.95),
    ("train", "final", 0.99), ("train", "best", 0.99),
    ("test", "test_at_best_val", 0.94),  # val ties at epochs 2 and 4: network3 keeps the later
])
def test_selection(split, selection, expected):
    assert run_accuracy(PublishedConfig(split=split, selection=selection), HISTORY) == expected


def test_best_of_n_and_mean_of_n():
    runs = [_run(seed=s, test=[a], final_test=a) for s, a in enumerate([0.95, 0.96, 0.94])]
    best = reproduce(PublishedConfig(value=95.9, selection="best", aggregate="best", runs=3,
                                     tolerance=0.5), runs)
    assert best.value == pytest.approx(96.0) and best.runs == 3 and best.spread is None
    assert best.delta == pytest.approx(0.1) and best.verdict == "within tolerance"
    assert best.how == "best of 3"
    mean = reproduce(PublishedConfig(value=96.5, selection="final", aggregate="mean",
                                     tolerance=0.5), runs)
    assert mean.value == pytest.approx(95.0) and mean.spread == pytest.approx(1.0)
    assert mean.verdict == "outside tolerance" and mean.delta == pytest.approx(-1.5)


def test_a_number_from_one_run_is_compared_with_the_mean_of_single_runs():
    """Nielsen's 1,000-image curves are one run each: the best of three seeds would be a
    luckier statistic than the one published."""
    runs = [_run(seed=s, test=[a], final_test=a) for s, a in enumerate([0.8300, 0.8246, 0.8236])]
    rep = reproduce(PublishedConfig(value=82.27, selection="best", aggregate="best", runs=1,
                                    tolerance=0.5), runs)
    assert rep.value == pytest.approx(82.6067, abs=1e-3) and rep.how == "mean of 3 single runs"
    assert rep.spread == pytest.approx(0.3443, abs=1e-3) and rep.verdict == "within tolerance"
    six = [_run(seed=s, test=[a], final_test=a)
           for s, a in enumerate([.95, .96, .94, .93, .97, .92])]
    rep = reproduce(PublishedConfig(value=96.0, selection="best", aggregate="best", runs=3), six)
    assert rep.value == pytest.approx(96.5) and rep.how == "mean of 2 bests of 3"


def test_error_rows_and_the_at_most_rule():
    runs = [_run(final_test=0.962), _run(seed=1, final_test=0.958)]
    published = PublishedConfig(value=4.7, metric="error", rule="at_most", selection="final",
                                runs=2)
    rep = reproduce(published, runs)
    assert rep.value == pytest.approx(3.8)  # the best run's error
    assert rep.verdict == "≤ published (recipe reconstructed)"
    worse = reproduce(PublishedConfig(value=3.0, metric="error", rule="at_most"), runs)
    assert worse.verdict == "> published (recipe reconstructed)"


def test_baseline_without_a_published_number():
    rep = reproduce(PublishedConfig(value=None), [_run(final_test=0.9)])
    assert rep.value == pytest.approx(90.0) and rep.delta is None
    assert rep.verdict.startswith("baseline")


def test_curve_distance_per_epoch():
    runs = [_run(test=[0.90, 0.92, 0.94]), _run(seed=1, test=[0.92, 0.94, 0.96])]
    rep = reproduce(PublishedConfig(value=95.0, selection="best"), runs,
                    curve=[91.0, 94.0, 95.0, 99.0])
    assert rep.curve_max == pytest.approx(1.0) and rep.curve_mean == pytest.approx(1 / 3)


@pytest.mark.parametrize("curve,key,best,best_epoch,final", [
    ("nielsen/overfitting.json", None, 82.27, 374, None),
    ("nielsen/overfitting_full.json", None, 95.33, 24, 95.31),
    ("nielsen/regularized_full.json", None, 96.49, 28, 95.61),
    ("nielsen/weight_initialization_30.json", "default_weight_initialization", 96.53, None, None),
    ("nielsen/weight_initialization_100.json", "large_weight_initialization", 97.55, None, None),
])
def test_shipped_curves_hold_the_published_numbers(curve, key, best, best_epoch, final):
    values = load_curve(PublishedConfig(curve=curve, curve_key=key))
    assert max(values) == pytest.approx(best)
    if best_epoch:
        assert values.index(max(values)) == best_epoch  # Nielsen numbers epochs from 0
    if final:
        assert values[-1] == pytest.approx(final)


MNIST_ROWS = ["nielsen-*", "rashid-*", "lecun98-*", "simard03-*", "mnist-*"]


def test_every_mnist_and_seed_experiment_trains_on_stand_in_files(tmp_path):
    root = write_idx_set(tmp_path / "mnist", n_train=10200, n_test=100)
    csv = write_kaggle_csv(tmp_path / "train.csv", n=300)
    uri = store(tmp_path)
    done = pipeline("reproduce.py", f"only=[{','.join(MNIST_ROWS)},blog-network*]", "seeds=1",
                    "n_jobs=2", f"tracking.uri={uri}", f"mnist_root={root}", f"kaggle_csv={csv}",
                    "overrides=['trainer.epochs=1']", "out=report", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "report" / "reproduce.md").read_text()
    experiments = sorted(p.stem for p in (pipeline.__globals__["ROOT"] / "conf" / "experiment")
                         .glob("*.yaml") if not p.stem.startswith(("fashion", "sklearn", "rolisz")))
    children = [r for r in runs_of(uri, "reproduce") if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["experiment_id"] for r in children) == experiments
    assert all(r.info.status == "FINISHED" for r in children)
    assert all(r.data.params["trainer.epochs"] == "1" for r in children)
    for exp in experiments:
        assert f"| {exp} " in table
    assert "data missing" not in table
    assert "recipe reconstructed" in table and "baseline" in table
    parent = next(r for r in runs_of(uri, "reproduce") if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"


def test_missing_mnist_is_reported_with_the_files_to_fetch(tmp_path):
    uri = store(tmp_path)
    done = pipeline("reproduce.py", "only=nielsen-ch1-30", f"tracking.uri={uri}", "out=report",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "report" / "reproduce.md").read_text()
    assert "data missing" in table and "train-images-idx3-ubyte.gz" in table
    assert "mnist_root=" in table


def _single_run(tmp_path, *args):
    uri = store(tmp_path)
    done = pipeline("train.py", "trainer.epochs=3", "tracking.log_model=false",
                    f"tracking.uri={uri}", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_of(uri)
    return uri, run


def test_rerun_reproduces_a_digits_run_exactly_and_catches_altered_weights(tmp_path):
    from urllib.parse import urlparse

    import numpy as np

    uri, run = _single_run(tmp_path, "model.hidden=[12,8]", "seed=4")
    done = pipeline("rerun.py", f"run_id={run.info.run_id}", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "reproduced exactly" in done.stdout
    rerun = next(r for r in runs_of(uri) if r.data.tags.get("digitlab.rerun_of") == run.info.run_id)
    assert rerun.info.status == "FINISHED"

    weights = Path(urlparse(run.info.artifact_uri).path) / "weights" / "final.npz"
    with np.load(weights, allow_pickle=False) as arrays:
        state = dict(arrays)
    state["W2"][0, 0] += 1e-3
    np.savez(weights, **state)
    done = pipeline("rerun.py", f"run_id={run.info.run_id}", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 1
    assert "NOT reproduced: first difference: weights/final.npz: W2 differs" in done.stdout


def test_rerun_refuses_other_data(tmp_path):
    csv = write_kaggle_csv(tmp_path / "train.csv", n=120)
    uri, run = _single_run(tmp_path, "data=kaggle_csv", f"data.path={csv}")
    write_kaggle_csv(csv, n=120, seed=9)  # same layout, other pixels
    done = pipeline("rerun.py", f"run_id={run.info.run_id}", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 2
    assert "the data differs from the logged run's" in done.stderr
    assert len(runs_of(uri)) == 1  # nothing was re-run


def test_rerun_of_an_unknown_run(tmp_path):
    uri, _ = _single_run(tmp_path)
    done = pipeline("rerun.py", "run_id=0123456789abcdef", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 2 and "no such run" in done.stderr


def test_export_kaggle_csv_writes_mnist_in_kaggles_layout(tmp_path):
    from digitlab.config import DataConfig
    from digitlab.data import load_dataset
    from digitlab.data.csv import read_kaggle_csv

    root = write_idx_set(tmp_path / "mnist", n_train=120, n_test=20)
    done = pipeline("export_kaggle_csv.py", f"mnist_root={root}", "rows=100",
                    f"out={tmp_path / 'kaggle' / 'train.csv'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    header = (tmp_path / "kaggle" / "train.csv").read_text().split("\n", 1)[0]
    assert header == "label," + ",".join(f"pixel{i}" for i in range(784))
    cells = read_kaggle_csv(tmp_path / "kaggle" / "train.csv")
    mnist = load_dataset(DataConfig(name="mnist", root=str(root)))
    assert cells.shape == (100, 785)
    assert (cells[:, 0] == mnist.y_train[:100]).all()
    assert (cells[:, 1:] == mnist.x_train[:100]).all()
    assert not list((tmp_path / "kaggle").glob(".*partial"))
    missing = pipeline("export_kaggle_csv.py", f"mnist_root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert missing.returncode == 2 and "the official IDX files are not in" in missing.stderr
