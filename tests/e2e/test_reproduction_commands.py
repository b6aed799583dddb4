"""End-to-end tests of test_reproduction.py's subject: each runs a real command."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import client, pipeline, runs_of, store, write_idx_set, write_kaggle_csv
from test_reproduction import MNIST_ROWS


def _single_run(tmp_path, *args):
    uri = store(tmp_path)
    done = pipeline("train.py", "trainer.epochs=3", "tracking.log_model=false",
                    f"tracking.uri={uri}", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = runs_of(uri)
    return uri, run


# slow (≈ 90 s on 2 cores): every MNIST recipe of the catalogue, each its own config (54 runs with
# the chapter-5 rows' 5 seeds), composed and trained end to end by reproduce.py into one table;
# a smaller test would leave recipes that no run has ever composed or trained
@pytest.mark.slow
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
    # one seed each, but ≥ 5 for the rows judged on a band over seeds (published.min_seeds)
    seeds = {exp: 5 if exp.startswith("nielsen-ch5-speed") else 1 for exp in experiments}
    assert sorted(r.data.params["experiment_id"] for r in children) == sorted(
        exp for exp in experiments for _ in range(seeds[exp]))
    assert all(r.info.status == "FINISHED" for r in children)
    assert all(r.data.params["trainer.epochs"] == "1" for r in children)
    for exp in experiments:
        assert f"| {exp} " in table
    assert "data missing" not in table
    assert "recipe reconstructed" in table and "baseline" in table
    assert "band of 5 seeds" in table  # the chapter-5 speed rows have their verdict
    parent = next(r for r in runs_of(uri, "reproduce") if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"


def test_missing_mnist_is_one_line_with_the_files_to_fetch_and_writes_nothing(tmp_path):
    uri = store(tmp_path)
    done = pipeline("reproduce.py", "only=nielsen-ch1-30", f"tracking.uri={uri}", "out=report",
                    cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    [line] = done.stderr.strip().splitlines()
    assert "no row can run" in line and "train-images-idx3-ubyte.gz" in line
    assert "mnist_root=" in line
    assert not (tmp_path / "report").exists() and not (tmp_path / "mlruns").exists()
    # what it will do, before composing the rows and opening the store (seconds)
    assert done.stdout.startswith("reproducing 1 row(s) (nielsen-ch1-30), 3 seed(s) each")


def test_rows_that_cannot_run_never_replace_a_table(tmp_path):
    """A typo in mnist_root= beside rows that run: exit 1, the table written beside the
    existing reproduce.md, which stays as it was."""
    uri = store(tmp_path)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "reproduce.md").write_text("the committed table\n")
    done = pipeline("reproduce.py", "only=[nielsen-ch1-30,rolisz-digits]", "seeds=1",
                    "overrides=['trainer.epochs=1']", f"mnist_root={tmp_path / 'typo'}",
                    f"tracking.uri={uri}", "out=report", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    assert (tmp_path / "report" / "reproduce.md").read_text() == "the committed table\n"
    partial = (tmp_path / "report" / "reproduce.partial.md").read_text()
    assert "| rolisz-digits " in partial and "data missing" in partial
    assert "reproduce.md is kept as it was" in done.stdout


def test_rerun_reproduces_a_digits_run_exactly_and_catches_altered_weights(tmp_path):
    from urllib.parse import urlparse

    import numpy as np

    uri, run = _single_run(tmp_path, "model.hidden=[12,8]", "seed=4")
    done = pipeline("rerun.py", f"run_id={run.info.run_id}", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "reproduced exactly" in done.stdout
    rerun = next(r for r in runs_of(uri) if r.data.tags.get("digitlab.rerun_of") == run.info.run_id)
    assert rerun.info.status == "FINISHED"

    # the run names what its bits depend on; a rerun says which of these differ
    from digitlab.runner import numerics, with_resolved_threads
    from digitlab.tags import NUMERICS

    recorded = {k: run.data.tags.get(k) for k in NUMERICS}
    assert recorded == numerics(with_resolved_threads(_config_of(run)))
    client(uri).set_tag(run.info.run_id, "env.numpy", "1.0.0")
    done = pipeline("rerun.py", f"run_id={run.info.run_id}", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0 and "reproduced exactly" in done.stdout, done.stderr[-2000:]
    assert "note: env.numpy is " in done.stderr and "1.0.0 in the logged run" in done.stderr

    # a final metric logged again 1e-12 away: the weights are bit-identical, the loss is noise
    loss = run.data.metrics["test_loss"]
    history = client(uri).get_metric_history(run.info.run_id, "test_loss")
    client(uri).log_metric(run.info.run_id, "test_loss", loss * (1 + 1e-12),
                           timestamp=history[-1].timestamp + 1, step=history[-1].step)
    done = pipeline("rerun.py", f"run_id={run.info.run_id}", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr[-2000:]
    assert ("reproduced: weights and test predictions bit-identical; 1 logged metric value(s) "
            "differ by at most 1e-12"
            in done.stdout and "a loss is a sum" in done.stdout), done.stdout

    weights = Path(urlparse(run.info.artifact_uri).path) / "weights" / "final.npz"
    with np.load(weights, allow_pickle=False) as arrays:
        state = dict(arrays)
    state["W2"][0, 0] += 1e-3
    np.savez(weights, **state)
    done = pipeline("rerun.py", f"run_id={run.info.run_id}", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 1
    assert "NOT reproduced: the weights differ (weights/final.npz W2: largest |Δ|" in done.stdout


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


def _config_of(run):
    """The run's config as it logged it (its config.yaml)."""
    from urllib.parse import urlparse

    import yaml

    from digitlab.config import run_config_from_dict

    path = Path(urlparse(run.info.artifact_uri).path) / "config.yaml"
    return run_config_from_dict(yaml.safe_load(path.read_text()))
