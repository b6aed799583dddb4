"""Ctrl-C and SIGTERM stop a run between two store writes, never inside one."""

from __future__ import annotations

import os
import signal

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from digitlab import stopping
from digitlab.tracking.runs import MlflowTracker
from digitlab.tracking.store import prepare_store
from digitlab.training import EpochRecord


@pytest.fixture
def handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stopping.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum,raised", [(signal.SIGTERM, stopping.Terminated),
                                           (signal.SIGINT, KeyboardInterrupt)])
def test_a_signal_outside_deferred_blocks_raises_at_once(handlers, signum, raised):
    with pytest.raises(raised):
        os.kill(os.getpid(), signum)
        for _ in range(1000):  # the handler runs at the next bytecode
            pass


def test_a_signal_inside_a_deferred_block_waits_for_its_end(handlers):
    done = []
    with pytest.raises(stopping.Terminated):
        with stopping.deferred():
            with stopping.deferred():  # nested: only the outermost end raises
                os.kill(os.getpid(), signal.SIGTERM)
                done.append("inner")
            done.append("outer")
    assert done == ["inner", "outer"]
    with stopping.deferred():  # nothing is left pending
        pass


def test_a_deferred_block_that_fails_still_raises_the_signal(handlers):
    with pytest.raises(stopping.Terminated):
        with stopping.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            raise ValueError("the block's own error")


def test_sigterm_during_an_epoch_write_ends_the_run_killed_with_the_epoch_kept(
        tmp_path, handlers, monkeypatch):
    # the signal lands in the middle of MLflow's write (the race that once locked the store)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = prepare_store(uri, "digitlab")
    real_log_batch = MlflowClient.log_batch

    def log_batch_hit_by_sigterm(self, run_id, metrics=(), *args, **kwargs):
        if metrics:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_log_batch(self, run_id, metrics, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch_hit_by_sigterm)
    tracker = MlflowTracker(uri, experiment_id)
    after_write = []
    with pytest.raises(stopping.Terminated):
        with tracker.run("stopped", {"seed": "0"}, {}) as log:
            log.log_epoch(EpochRecord(epoch=1, train_loss=0.5, train_accuracy=0.8, val_loss=None,
                                      val_accuracy=None, lr=0.1, seconds=0.01, improved=True))
            after_write.append(True)
    assert not after_write  # stopped right after the write, before the next step
    assert mlflow.active_run() is None
    run = MlflowClient(uri).search_runs([experiment_id])[0]
    assert run.info.status == "KILLED"
    assert run.data.metrics["train_loss"] == 0.5
    assert run.data.tags["error"].startswith("Terminated")
