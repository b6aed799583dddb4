"""End-to-end tests of test_epoch_journal.py's subject: each runs a real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import ROOT, pipeline, runs_of, store
from test_epoch_journal import _steps


def test_a_run_killed_outright_keeps_every_epoch_its_journal_holds(tmp_path, monkeypatch):
    uri = store(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("DIGITLAB_CACHE", str(cache))  # the run's and the reaper's journals
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    # per-sample NumPy updates: epochs of tens of milliseconds, so the kill lands mid-run
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "pipelines" / "train.py"), "trainer.epochs=100000",
         "model.hidden=8", "trainer.batch_size=1", "trainer.engine=numpy",
         "tracking.log_model=false", f"tracking.uri={uri}"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    journals = cache / "epoch-journals"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            found = list(journals.glob("*.jsonl")) if journals.exists() else []
            if found and len(found[0].read_text().splitlines()) >= 5:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the run never journaled 5 epochs")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no handler runs
        proc.wait()
    journal = found[0]
    run_id = journal.stem
    journaled = len(journal.read_text().splitlines())
    assert len(_steps(uri, run_id)) < journaled  # the store was behind when the run died
    # reaped by another command, one with another cache folder
    done = pipeline("status.py", f"tracking.uri={uri}", cwd=tmp_path,
                    env={"DIGITLAB_CACHE": str(tmp_path / "another-cache")})
    assert done.returncode == 0 and "marked KILLED" in done.stdout, done.stderr[-2000:]
    run = runs_of(uri)[0]
    assert run.info.status == "KILLED"
    for key in ("train_loss", "train_accuracy", "lr", "epoch_seconds"):
        assert _steps(uri, run_id, key) == list(range(1, journaled + 1)), key
    assert not journal.exists()
