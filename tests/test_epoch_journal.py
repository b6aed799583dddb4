"""Per-epoch metrics in batches: the first epoch at once, the rest with the final metrics, every
epoch journaled so that a run killed outright loses none (digitlab.tracking.epochs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.entities import Metric

from conftest import ROOT, client, runs_of, store
from digitlab import tracking
from digitlab.tracking import epochs
from digitlab.training import EpochRecord


def _record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch=epoch, train_loss=1.0 / epoch, train_accuracy=0.5, val_loss=None,
                       val_accuracy=None, lr=0.1, seconds=0.001, improved=True)


def _steps(uri: str, run_id: str, key: str = "train_loss") -> list[int]:
    return sorted(m.step for m in client(uri).get_metric_history(run_id, key))


def _open(tmp_path):
    uri = store(tmp_path)
    experiment_id = tracking.prepare_store(uri, "digitlab")
    return uri, tracking.MlflowTracker(uri, experiment_id)


def test_epochs_after_the_first_wait_for_the_final_metrics_and_lose_nothing(tmp_path):
    uri, tracker = _open(tmp_path)
    with tracker.run("batched", {"seed": "0"}, {}) as log:
        for epoch in range(1, 6):
            log.log_epoch(_record(epoch))
        assert _steps(uri, log.run_id) == [1]  # the first at once, the others pending
        assert len(epochs.journal_path(log.run_id).read_text().splitlines()) == 5
        log.log_metrics({"test_accuracy": 0.9})
        assert _steps(uri, log.run_id) == [1, 2, 3, 4, 5]
    run = client(uri).get_run(log.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["test_accuracy"] == 0.9
    assert not epochs.journal_path(log.run_id).exists()  # a finished run keeps no journal


def test_epochs_are_written_as_they_end_once_the_write_interval_has_passed(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setattr(epochs, "WRITE_SECONDS", 0.0)
    uri, tracker = _open(tmp_path)
    with tracker.run("every epoch", {"seed": "0"}, {}) as log:
        for epoch in range(1, 4):
            log.log_epoch(_record(epoch))
            assert _steps(uri, log.run_id) == list(range(1, epoch + 1))


def test_a_failed_run_writes_its_pending_epochs_before_it_ends(tmp_path):
    uri, tracker = _open(tmp_path)
    with pytest.raises(ValueError):
        with tracker.run("fails", {"seed": "0"}, {}) as log:
            for epoch in range(1, 4):
                log.log_epoch(_record(epoch))
            raise ValueError("the run's own error")
    run = client(uri).get_run(log.run_id)
    assert run.info.status == "FAILED" and _steps(uri, log.run_id) == [1, 2, 3]
    assert not epochs.journal_path(log.run_id).exists()


def test_without_a_journal_every_epoch_goes_to_the_store_as_it_ends(tmp_path, monkeypatch,
                                                                    caplog):
    uri, tracker = _open(tmp_path)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # the journal's folder cannot be made under a file
    monkeypatch.setenv("DIGITLAB_CACHE", str(blocked))
    with tracker.run("no journal", {"seed": "0"}, {}) as log:
        for epoch in range(1, 4):
            log.log_epoch(_record(epoch))
            assert _steps(uri, log.run_id) == list(range(1, epoch + 1))
    assert "cannot keep the epoch journal" in caplog.text


def test_replay_writes_a_journal_once_and_skips_a_line_cut_short(tmp_path):
    uri, tracker = _open(tmp_path)
    with tracker.run("replayed", {"seed": "0"}, {}) as log:
        run_id = log.run_id
    journal = epochs.journal_path(run_id)
    journal.parent.mkdir(parents=True, exist_ok=True)
    rows = [[["train_loss", 0.5, 1000 + step, step]] for step in (1, 2)]
    journal.write_text("".join(f"{row}\n".replace("'", '"') for row in rows) + '[["train_lo')
    mlflow_client = client(uri)
    mlflow_client.log_batch(run_id, metrics=[Metric("train_loss", 0.5, 1001, 1)])  # in both
    assert epochs.replay(mlflow_client, run_id) == 2
    assert _steps(uri, run_id) == [1, 2]  # step 1 once, though it was written twice
    assert not journal.exists() and epochs.replay(mlflow_client, run_id) == 0


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
    experiment_id = client(uri).get_experiment_by_name("digitlab").experiment_id
    assert tracking.mark_dead_runs_killed(client(uri), experiment_id) == [run_id]
    run = runs_of(uri)[0]
    assert run.info.status == "KILLED"
    for key in ("train_loss", "train_accuracy", "lr", "epoch_seconds"):
        assert _steps(uri, run_id, key) == list(range(1, journaled + 1)), key
    assert not journal.exists()
