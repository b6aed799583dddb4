"""Successive halving's rules (digitlab.halving) and a run that goes on from the rung it stopped
at (runner.run's `until`): the same bits as a run trained straight through, one record."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from digitlab import runner
from digitlab.config import ConfigError, RunConfig
from digitlab.halving import Halving, check


@pytest.mark.parametrize("plan, max_epochs, rungs", [
    (Halving(3, 1), 9, [1, 3, 9]),
    (Halving(3, 1), 10, [1, 3, 9, 10]),
    (Halving(2, 2), 9, [2, 4, 8, 9]),
    (Halving(4, 3), 5, [3, 5]),
])
def test_rungs_run_from_min_epochs_by_eta_to_the_budget(plan, max_epochs, rungs):
    assert plan.rungs(max_epochs) == rungs


def test_each_rung_keeps_the_best_1_over_eta_and_never_fewer_than_one():
    plan = Halving(3, 1)
    assert [plan.keep(n) for n in (24, 8, 2, 1)] == [8, 2, 1, 1]
    # 24 configs × 2 seeds at epoch 1, 8 × 2 at 3, 2 × 2 at 9
    assert plan.launches(24, 2, 9) == 48 + 16 + 4


def test_a_rung_scores_a_run_by_its_best_or_last_value_up_to_the_rung():
    history = [0.5, 0.8, 0.7, 0.9]
    assert Halving(metric="best_val_accuracy").value(history, 3) == 0.8
    assert Halving(metric="val_accuracy").value(history, 3) == 0.7
    assert Halving(metric="val_loss").value([2.0, 1.0, 1.5], 3) == 1.5
    # a run stopped early by trainer.early_stopping: its last value
    assert Halving(metric="val_accuracy").value([0.5, 0.6], 3) == 0.6
    assert math.isnan(Halving().value([], 1))


def test_survivors_are_the_best_by_the_metric_and_a_failed_config_never_goes_on():
    scores = {"a": 0.9, "b": math.nan, "c": 0.95, "d": 0.2, "e": 0.5, "f": 0.6}
    assert Halving(3, metric="val_accuracy").survivors(scores) == ["c", "a"]
    assert Halving(3, metric="val_loss").survivors(scores) == ["d", "e"]
    # more places than configs with a score: the failed one still stays behind
    assert Halving(2).survivors({"a": math.nan, "b": 0.4}) == ["b"]


@pytest.mark.parametrize("prune, plan, epochs, flags, said", [
    ("hyper", Halving(), {9}, {}, "hydra.sweeper.prune=hyper: use one of none, halving"),
    ("halving", Halving(), {9}, {"sweeping": False}, "add -m"),
    ("halving", Halving(eta=1), {9}, {}, "hydra.sweeper.prune_eta=1: give an integer ≥ 2"),
    ("halving", Halving(eta="x"), {9}, {}, "hydra.sweeper.prune_eta=x: give an integer ≥ 2"),
    ("halving", Halving(min_epochs=9), {9}, {},
     "hydra.sweeper.prune_min_epochs=9: give an integer ≥ 1 and below trainer.epochs=9"),
    ("halving", Halving(), {3, 9}, {}, "trainer.epochs=3,9: with hydra.sweeper.prune=halving"),
    ("halving", Halving(metric="test_accuracy"), {9}, {},
     "hydra.sweeper.prune_metric=test_accuracy: use one of best_val_accuracy, val_accuracy, "
     "val_loss"),
    ("halving", Halving(), {9}, {"has_val": False}, "the runs log no validation score"),
    ("halving", Halving(), {9}, {"tracked": False}, "tracking=off keeps none"),
    ("halving", Halving(), {9}, {"reused": False}, "tracking.skip_finished=false: with"),
])
def test_prune_keys_that_cannot_act_are_refused(prune, plan, epochs, flags, said):
    settings = {"sweeping": True, "tracked": True, "reused": True, "has_val": True, **flags}
    with pytest.raises(ConfigError, match=re.escape(said)):
        check(prune, plan, epochs, **settings)
    check("none", plan, epochs, **settings)  # no halving: nothing to refuse


def _config(optim: str) -> RunConfig:
    cfg = RunConfig()
    cfg.model.hidden, cfg.trainer.epochs, cfg.optim.name = [16], 5, optim
    cfg.optim.momentum = 0.5 if optim == "sgd" else 0.0
    cfg.optim.lr = 0.3 if optim == "sgd" else 0.01
    return cfg


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_a_run_that_goes_on_from_its_rungs_is_the_run_trained_straight_through(tmp_path, optim):
    from mlflow import MlflowClient

    from digitlab.tracking.runs import MlflowTracker
    from digitlab.tracking.store import prepare_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = _config(optim)
    straight = runner.run(cfg, MlflowTracker(uri, prepare_store(uri, "straight")), "straight")
    tracker = MlflowTracker(uri, prepare_store(uri, "rungs"))
    client = MlflowClient(uri)

    first = runner.run(cfg, tracker, "rung", until=2)
    assert (first.stopped_at, first.epochs_trained, first.skipped) == (2, 2, False)
    tags = client.get_run(first.run_id).data.tags
    assert (tags["digitlab.pruned"], tags["digitlab.pruned_epoch"]) == ("true", "2")
    assert tags["digitlab.config_hash"].endswith(" pruned at 2")
    again = runner.run(cfg, tracker, "rung", until=2)  # the rung trained: nothing to do
    assert (again.skipped, again.run_id, again.stopped_at) == (True, first.run_id, 2)

    second = runner.run(cfg, tracker, "rung", until=4)
    last = runner.run(cfg, tracker, "rung", until=5)
    assert second.run_id == last.run_id == first.run_id  # one config, one run
    assert (second.epochs_trained, last.epochs_trained, last.stopped_at) == (2, 1, None)
    for key, weights in straight.final_state.items():
        np.testing.assert_array_equal(weights, last.final_state[key])
    assert {k: v for k, v in last.metrics.items() if k != "train_seconds"} == {
        k: v for k, v in straight.metrics.items() if k != "train_seconds"}

    run = client.get_run(last.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["digitlab.pruned"] == "false" and "digitlab.pruned_epoch" not in run.data.tags
    assert run.data.tags["digitlab.config_hash"] == tracker_identity(straight, client)
    curve = client.get_metric_history(last.run_id, "val_accuracy")
    assert [m.step for m in curve] == [1, 2, 3, 4, 5]
    assert [m.value for m in curve] == [
        m.value for m in client.get_metric_history(straight.run_id, "val_accuracy")]
    models = client.search_logged_models([run.info.experiment_id],
                                         filter_string=f"source_run_id = '{last.run_id}'")
    assert len(models) == 1  # the earlier rungs' models replaced
    # done: the config is FINISHED, and an earlier rung asks for nothing more
    assert runner.run(cfg, tracker, "rung", until=2).run_id == last.run_id


def tracker_identity(result, client) -> str:
    return client.get_run(result.run_id).data.tags["digitlab.config_hash"]


def test_a_full_run_of_the_config_serves_every_rung(tmp_path):
    from digitlab.tracking.runs import MlflowTracker
    from digitlab.tracking.store import prepare_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, prepare_store(uri, "x"))
    cfg = replace(_config("sgd"), trainer=replace(_config("sgd").trainer, epochs=3))
    full = runner.run(cfg, tracker, "full")
    rung = runner.run(cfg, tracker, "rung", until=1)
    assert (rung.skipped, rung.run_id, rung.stopped_at) == (True, full.run_id, None)


def test_a_run_cut_off_while_going_on_starts_again_from_its_rungs_checkpoint(tmp_path):
    from mlflow import MlflowClient

    from digitlab.tracking.runs import MlflowTracker
    from digitlab.tracking.store import prepare_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = _config("sgd")
    straight = runner.run(cfg, MlflowTracker(uri, prepare_store(uri, "straight")), "straight")
    tracker, client = MlflowTracker(uri, prepare_store(uri, "rungs")), MlflowClient(uri)
    first = runner.run(cfg, tracker, "rung", until=2)

    def ctrl_c(record):
        if record.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(cfg, tracker, "rung", until=5, stop_when=ctrl_c)
    cut = client.get_run(first.run_id)
    assert cut.info.status == "KILLED" and "error" in cut.data.tags

    last = runner.run(cfg, tracker, "rung", until=5)
    assert (last.run_id, last.epochs_trained) == (first.run_id, 3)  # from epoch 2, not 3 or 0
    for key, weights in straight.final_state.items():
        np.testing.assert_array_equal(weights, last.final_state[key])
    run = client.get_run(last.run_id)
    assert run.info.status == "FINISHED" and "error" not in run.data.tags
