"""Per-epoch metrics in batches: the first epoch at once, the rest with the final metrics, every
epoch journaled so that a run killed outright loses none (digitlab.tracking.epochs)."""

from __future__ import annotations

import pytest
from mlflow.entities import Metric

from conftest import client, store
from digitlab.tracking import epochs
from digitlab.tracking.runs import MlflowTracker
from digitlab.tracking.store import prepare_store
from digitlab.training import EpochRecord


def _record(epoch: int) -> EpochRecord:
    return EpochRecord(epoch=epoch, train_loss=1.0 / epoch, train_accuracy=0.5, val_loss=None,
                       val_accuracy=None, lr=0.1, seconds=0.001, improved=True)


def _steps(uri: str, run_id: str, key: str = "train_loss") -> list[int]:
    return sorted(m.step for m in client(uri).get_metric_history(run_id, key))


SHARED: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_store(tmp_path_factory):
    SHARED["uri"] = store(tmp_path_factory.mktemp("journal-store"))
    yield


def _open(tmp_path):
    """The module's one store (made once: MLflow migrates a new store in seconds), an
    experiment of this test's own."""
    uri = SHARED["uri"]
    experiment_id = prepare_store(uri, f"journal-{tmp_path.name}")
    return uri, MlflowTracker(uri, experiment_id)


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


def test_a_run_finishes_where_the_platform_has_no_fdatasync(tmp_path, monkeypatch):
    """macOS has no os.fdatasync: the journal is synced with fsync there, and a tracked run
    finishes with every epoch."""
    import os

    from digitlab import runner
    from digitlab.config import RunConfig, TrainerConfig

    synced = []
    real_fsync = os.fsync
    monkeypatch.delattr(os, "fdatasync", raising=False)
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    uri, tracker = _open(tmp_path)
    cfg = RunConfig(trainer=TrainerConfig(epochs=3))
    result = runner.run(cfg, tracker, "no-fdatasync", out_dir=tmp_path / "out")
    assert client(uri).get_run(result.run_id).info.status == "FINISHED"
    assert _steps(uri, result.run_id) == [1, 2, 3]
    assert synced  # the journal was synced, by fsync
