"""Faults of the machine and of the store, with real processes: a worker killed mid-sweep, a stop
while a store is being created, a full disk, a tracking server that dies, a sweep stopped with
Ctrl-C or killed outright. None may leave a run RUNNING that could be ended, a store half-made,
or the rest of a sweep unrun."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_pipeline import ROOT, client, pipeline, runs_of, store

pytestmark = pytest.mark.timeout(600)


def children(uri, experiment="digitlab"):
    if not Path(uri.removeprefix("sqlite:///")).exists():  # opening it would create it
        return []
    return [r for r in runs_of(uri, experiment) if "mlflow.parentRunId" in r.data.tags]


def _wait(condition, timeout: float = 240, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # the store is being created or written
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _start(args: list[str], cwd: Path, log: Path, script: str = "train.py",
           env: dict | None = None) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTEST_CURRENT_TEST", "MLFLOW_TRACKING_URI")}
    return subprocess.Popen([sys.executable, str(ROOT / "pipelines" / script), *args], cwd=cwd,
                            env={**environment, "PYTHONWARNINGS": "ignore", **(env or {})},
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_a_killed_joblib_worker_costs_one_relaunch_not_the_sweep(tmp_path):
    uri = store(tmp_path)
    proc = _start(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3,4,5",
                   "trainer.epochs=400", "model.hidden=32", "trainer.engine=numpy",
                   "tracking.log_model=false", f"tracking.uri={uri}"], tmp_path,
                  tmp_path / "sweep.log")
    try:
        _wait(lambda: any(r.info.status == "RUNNING" and r.data.metrics.get("train_loss")
                          for r in children(uri)), what="a job training")
        victim = next(r for r in children(uri) if r.info.status == "RUNNING")
        os.kill(int(victim.data.tags["digitlab.pid"]), signal.SIGKILL)  # as the OOM killer does
        assert proc.wait(timeout=400) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        proc.kill()
    output = (tmp_path / "sweep.log").read_text()
    assert "a worker process died" in output and "Traceback" not in output
    assert "6 finished, 0 skipped (already FINISHED), 0 failed" in output
    runs = children(uri)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.params["seed"] for r in finished) == [str(s) for s in range(6)]
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert victim.info.run_id in {r.info.run_id for r in killed}
    assert all("died while the run was RUNNING" in r.data.tags["error"] for r in killed)
    parent = next(r for r in runs_of(uri) if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
