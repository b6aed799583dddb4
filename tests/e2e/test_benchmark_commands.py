"""End-to-end tests of test_benchmarks.py's subject: each runs a real command."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, client, pipeline, runs_of
from test_benchmarks import _bench


def test_the_by_hand_script_logs_params_metrics_and_weights(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "by_hand.py"),
                           f"tracking_uri={uri}", "epochs=3", f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = runs_of(uri, "by-hand")
    assert run.info.status == "FINISHED" and run.data.params["hidden"] == "32"
    history = client(uri).get_metric_history(run.info.run_id, "test_accuracy")
    assert [m.step for m in history] == [1, 2, 3] and history[-1].value > 0.8  # it learns
    assert [a.path for a in client(uri).list_artifacts(run.info.run_id)] == ["weights.npz"]


def test_the_sweep_floor_sums_the_runs_epoch_loops(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = pipeline("train.py", "-m", "seed=0,1", "trainer.epochs=2", "tracking.log_model=false",
                    f"tracking.uri={uri}", "tracking.experiment=floor", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds = [r.data.metrics["train_seconds"] for r in runs_of(uri, "floor")
               if "train_seconds" in r.data.metrics]
    assert len(seconds) == 2
    assert abs(_bench()._train_seconds(uri, "floor") - sum(seconds)) < 1e-9
