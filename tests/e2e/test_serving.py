"""Handing a model on: register the best run as name@champion, serve it with `mlflow models
predict`, and turn a Kaggle test.csv into a submission — real processes, real stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import client, pipeline, runs_of, store, write_kaggle_csv

pytestmark = pytest.mark.timeout(900)
MLFLOW = str(Path(sys.executable).parent / "mlflow")


@pytest.fixture
def served(digits_sweep, tmp_path):
    """The session's digits sweep (three hidden sizes: the best run by validation accuracy is a
    real choice), and a working folder of the test's own."""
    return tmp_path, digits_sweep.uri


def children(uri: str):
    return [r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags]


def champion(uri: str, name: str = "digitlab"):
    return client(uri).get_model_version_by_alias(name, "champion")


def digits_csv(path: Path, rows: np.ndarray, labels: np.ndarray | None = None) -> Path:
    header = ([] if labels is None else ["label"]) + [f"pixel{i}" for i in range(rows.shape[1])]
    cells = rows if labels is None else np.c_[labels, rows]
    np.savetxt(path, cells, fmt="%d", delimiter=",", header=",".join(header), comments="")
    return path


def test_register_picks_the_best_run_by_validation_and_moves_the_alias(served):
    tmp, uri = served
    runs = children(uri)
    best = max(runs, key=lambda r: r.data.metrics["best_val_accuracy"])
    done = pipeline("register.py", f"tracking.uri={uri}", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "digitlab@champion → version 1" in done.stdout
    assert "the latest sweep of the store" in done.stdout  # says which, and why
    version = champion(uri)
    assert version.run_id == best.info.run_id and str(version.version) == "1"
    assert version.tags["digitlab.best_val_accuracy"] == str(best.data.metrics["best_val_accuracy"])

    again = pipeline("register.py", f"tracking.uri={uri}", cwd=tmp)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    other = min(runs, key=lambda r: r.data.metrics["best_val_accuracy"])
    refused = pipeline("register.py", f"tracking.uri={uri}", f"run_id={other.info.run_id}",
                       cwd=tmp)  # a worse model does not take the alias unless asked
    assert refused.returncode == 2 and "so the alias stays; force=true moves it anyway" in (
        refused.stderr) and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert champion(uri).run_id == best.info.run_id
    moved = pipeline("register.py", f"tracking.uri={uri}", f"run_id={other.info.run_id}",
                     "force=true", cwd=tmp)
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert champion(uri).run_id == other.info.run_id and str(champion(uri).version) == "2"
    back = pipeline("register.py", f"tracking.uri={uri}", cwd=tmp)  # the best run keeps its version 1
    assert back.returncode == 0 and "version 1 (existing)" in back.stdout
    assert str(champion(uri).version) == "1"
    assert len(client(uri).search_model_versions("name = 'digitlab'")) == 2


def test_mlflow_models_predict_serves_the_champion_on_a_csv_of_pixels(served, tmp_path):
    import mlflow

    from digitlab.config import DataConfig
    from digitlab.data import load_dataset, make_split
    from digitlab.nn.init import seed_streams

    tmp, uri = served
    if pipeline("register.py", f"tracking.uri={uri}", cwd=tmp).returncode:
        pytest.fail("register failed")
    cfg = DataConfig()
    split = make_split(load_dataset(cfg), cfg, seed_streams(0).split)
    csv = digits_csv(tmp_path / "pixels.csv", split.raw_test[:40])
    out = tmp_path / "predictions.json"
    done = subprocess.run([MLFLOW, "models", "predict", "-m", "models:/digitlab@champion",
                           "-i", str(csv), "-t", "csv", "--env-manager", "local", "-o", str(out)],
                          env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    mlflow.set_tracking_uri(uri)
    expected = mlflow.pyfunc.load_model(f"runs:/{champion(uri).run_id}/model").predict(
        split.raw_test[:40])
    assert json.loads(out.read_text())["predictions"] == expected.tolist()
    assert np.mean(expected == split.y_test[:40]) > 0.6  # a trained model, not noise


def test_predict_on_the_digits_reports_accuracy_for_a_labeled_csv(served, tmp_path):
    from sklearn.datasets import load_digits

    tmp, uri = served
    run_id = children(uri)[0].info.run_id
    digits = load_digits()
    csv = digits_csv(tmp_path / "labeled.csv", digits.data[:200], digits.target[:200])
    out = tmp_path / "sub" / "submission.csv"
    done = pipeline("predict.py", f"tracking.uri={uri}", f"input={csv}", f"output={out}",
                    f"model_uri=runs:/{run_id}/model", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    submission = pd.read_csv(out)
    accuracy = np.mean(submission.Label.to_numpy() == digits.target[:200])
    assert f"accuracy against the file's labels: {accuracy:.4f}" in done.stdout


def test_kaggle_test_csv_becomes_a_submission(tmp_path):
    import mlflow

    uri = store(tmp_path)
    train_csv = write_kaggle_csv(tmp_path / "train.csv", n=300)
    done = pipeline("train.py", "data=kaggle_csv", f"data.path={train_csv}", "trainer.epochs=5",
                    "model.hidden=[16]", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = children(uri)[0] if children(uri) else runs_of(uri)[0]
    registered = pipeline("register.py", f"tracking.uri={uri}", f"run_id={run.info.run_id}",
                          "name=kaggle-digits", cwd=tmp_path)
    assert registered.returncode == 0, registered.stderr[-3000:]
    test_csv = write_kaggle_csv(tmp_path / "test.csv", n=50, labeled=False, seed=1)
    done = pipeline("predict.py", f"tracking.uri={uri}", f"input={test_csv}",
                    "model_uri=models:/kaggle-digits@champion", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert list(submission.columns) == ["ImageId", "Label"]
    assert submission.ImageId.tolist() == list(range(1, 51))
    mlflow.set_tracking_uri(uri)
    pixels = pd.read_csv(test_csv).to_numpy()
    expected = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(pixels)
    np.testing.assert_array_equal(submission.Label.to_numpy(), expected)
    # the synthetic images are separable: a trained network gets most of them right
    assert np.mean(expected == np.arange(50) % 10) > 0.8


@pytest.mark.parametrize("args, message", [
    (["input={tmp}/kaggle.csv", "model_uri=runs:/{run}/model"],  # MNIST's width, a digits model
     "kaggle.csv: 784 pixels per image, but model runs:/"),
    (["input={tmp}/missing.csv", "model_uri=runs:/{run}/model"], "missing.csv: file not found"),
    (["input={tmp}/kaggle.csv", "model_uri=models:/nobody@champion"],
     "model_uri=models:/nobody@champion: cannot load it"),
])
def test_predict_rejects_bad_input_in_one_line(served, tmp_path, args, message):
    tmp, uri = served
    write_kaggle_csv(tmp_path / "kaggle.csv", n=5, labeled=False)
    run_id = children(uri)[0].info.run_id
    done = pipeline("predict.py", f"tracking.uri={uri}",
                    *(a.format(tmp=tmp_path, run=run_id) for a in args), cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "submission.csv").exists()
    if "pixels per image" in message:  # which model, and the two ways out
        assert "trained on digits) reads 64; give a CSV of 64-pixel images" in done.stderr
        assert "export_kaggle_csv.py dataset=digits labels=false" in done.stderr
        assert "or a model trained on images of this size" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["metric=nope"], "metric=nope: no run of sweep"),
    (["run_id=0123456789abcdef0123456789abcdef"], "no such run"),
    (["tracking.experiment=nowhere"], "tracking.experiment=nowhere: no such experiment"),
])
def test_register_rejects_bad_input_in_one_line(served, args, message):
    tmp, uri = served
    done = pipeline("register.py", f"tracking.uri={uri}", *args, cwd=tmp)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_register_refuses_a_failed_run(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "optim.lr=500", "model.activation=relu", "model.output=identity",
                    "model.loss=quadratic", "model.init=normal", "trainer.epochs=5",
                    f"tracking.uri={uri}", cwd=tmp_path)  # diverges: FAILED
    failed = [r for r in runs_of(uri) if r.info.status == "FAILED"]
    assert done.returncode != 0 and failed, done.stderr[-2000:]
    refused = pipeline("register.py", f"tracking.uri={uri}", f"run_id={failed[0].info.run_id}", cwd=tmp_path)
    assert refused.returncode == 2 and "the run is FAILED" in refused.stderr


def test_the_model_takes_float_pixels_and_refuses_ones_out_of_range(served, tmp_path):
    import mlflow
    from sklearn.datasets import load_digits

    tmp, uri = served
    run = max(children(uri), key=lambda r: r.data.metrics["best_val_accuracy"])
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    pixels = load_digits().data[:50]  # float64, as scikit-learn hands them out
    labels = model.predict(pixels)
    assert np.array_equal(labels, model.predict(pixels.astype(np.int64)))
    assert np.mean(labels == load_digits().target[:50]) > 0.5
    with pytest.raises(Exception, match=r"pixels must be raw values in 0–16.*found 0–1600"):
        model.predict(pixels * 100)
    csv = tmp_path / "floats.csv"  # a CSV written from a float array: "3.0" cells
    pd.DataFrame(pixels, columns=[f"pixel{i}" for i in range(64)]).to_csv(csv, index=False)
    done = pipeline("predict.py", f"tracking.uri={uri}", f"input={csv}",
                    f"model_uri=runs:/{run.info.run_id}/model", f"output={tmp_path / 'out.csv'}",
                    cwd=tmp)
    assert done.returncode == 0, done.stderr[-2000:]
