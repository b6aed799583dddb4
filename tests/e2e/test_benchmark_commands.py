"""End-to-end tests of test_benchmarks.py's subject: each runs a real command."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, client, pipeline, runs_of
from test_benchmarks import _bench


def test_the_typical_script_logs_what_the_tutorials_log(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "typical.py"), f"uri={uri}",
                           "epochs=3", f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = runs_of(uri, "typical")
    assert run.info.status == "FINISHED" and run.data.params["hidden"] == "64"
    history = client(uri).get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3] and history[-1].value > 0.8  # it learns
    assert {"train_loss", "train_accuracy", "val_loss"} <= set(run.data.metrics)
    assert sorted(a.path for a in client(uri).list_artifacts(run.info.run_id)) == [
        "classification_report.txt", "confusion_matrix.png", "weights.npz"]
    # its artifacts beside the store, and a pyfunc model that predicts raw pixels
    import mlflow
    import numpy as np

    (model,) = client(uri).search_logged_models([run.info.experiment_id])
    assert model.artifact_location.startswith((tmp_path / "mlruns" / "artifacts").as_uri())
    loaded = mlflow.pyfunc.load_model(model.artifact_location)
    assert loaded.predict(np.zeros((2, 64))).shape == (2,)


def test_the_sweep_floor_sums_the_runs_epoch_loops(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = pipeline("train.py", "-m", "seed=0,1", "trainer.epochs=2", "tracking.log_model=false",
                    f"tracking.uri={uri}", "tracking.experiment=floor", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds = [r.data.metrics["train_seconds"] for r in runs_of(uri, "floor")
               if "train_seconds" in r.data.metrics]
    assert len(seconds) == 2
    assert abs(_bench()._train_seconds(uri, "floor") - sum(seconds)) < 1e-9


def test_the_breakdown_finds_every_part_of_a_tracked_run(tmp_path):
    bench = _bench()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, str(ROOT / "pipelines" / "train.py"), "trainer.epochs=1",
               f"tracking.uri={uri}", f"hydra.run.dir={tmp_path / 'run'}"]
    parts = dict(bench.breakdown(command, dict(os.environ), tmp_path))
    assert list(parts) == ["the whole process, profiled", *(part for part, _ in bench.PARTS)]
    assert all(seconds > 0 for seconds in parts.values()), parts
    phases = sum(seconds for part, seconds in parts.items() if not part.startswith(("the ",
                                                                                   "imports")))
    assert phases < parts["the whole process, profiled"]
