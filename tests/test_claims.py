"""One config is one run in a store other machines write to (a tracking server, a database),
where no lock file reaches: a run claims its identity by being created and then looking for
another RUNNING or FINISHED run of it (digitlab.tracking.runs). Driven here on a SQLite store,
whose own lock file the claim does not use."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from mlflow.entities import ViewType

from conftest import store
from digitlab import stopping
from digitlab import tags as tag
from digitlab.runner import AlreadyTrained
from digitlab.tracking import runs
from digitlab.tracking.store import client_for, prepare_store

SHARED: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_store(tmp_path_factory):
    SHARED["uri"] = store(tmp_path_factory.mktemp("claims"))
    yield


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "CLAIM_POLL_SECONDS", 0.05)
    uri = SHARED["uri"]
    return client_for(uri), prepare_store(uri, f"claims-{tmp_path.name}")


def _claim(client, experiment_id: str, identity: str = "abc") -> str:
    return runs._claimed(client, experiment_id, "job", {"seed": "0"}, {tag.IDENTITY: identity})


def _all_runs(client, experiment_id: str):
    return client.search_runs([experiment_id], run_view_type=ViewType.ALL)


def _later(seconds: float, action) -> threading.Thread:
    def act():
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=act)
    thread.start()
    return thread


def test_a_config_no_other_run_trains_is_claimed_and_others_are_not_blocked(experiment):
    client, experiment_id = experiment
    first = _claim(client, experiment_id)
    other = _claim(client, experiment_id, identity="another config")
    assert {r.info.run_id: r.info.status for r in _all_runs(client, experiment_id)} == {
        first: "RUNNING", other: "RUNNING"}


def test_a_claim_waits_for_the_run_training_its_config_and_takes_its_result(experiment):
    client, experiment_id = experiment
    rival = _claim(client, experiment_id)

    def finish():
        client.log_metric(rival, "test_accuracy", 0.93)
        client.set_terminated(rival, "FINISHED")

    thread = _later(0.3, finish)
    with pytest.raises(AlreadyTrained) as taken:
        _claim(client, experiment_id)
    thread.join()
    assert taken.value.run_id == rival and taken.value.metrics == {"test_accuracy": 0.93}
    # the waiting claim's own run was ended and deleted: the config has one run
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [rival]
    assert {(r.info.status, r.info.lifecycle_stage) for r in _all_runs(client, experiment_id)
            if r.info.run_id != rival} == {("KILLED", "deleted")}


@pytest.mark.parametrize("ending", ["FAILED", "KILLED", "deleted"])
def test_a_claim_trains_when_the_run_it_waited_for_did_not_finish(experiment, ending):
    client, experiment_id = experiment
    rival = _claim(client, experiment_id)
    thread = _later(0.3, (lambda: client.delete_run(rival)) if ending == "deleted" else
                    (lambda: client.set_terminated(rival, ending)))
    mine = _claim(client, experiment_id)
    thread.join()
    assert mine != rival and client.get_run(mine).info.status == "RUNNING"


def test_of_claims_made_at_once_one_trains_and_the_others_take_its_run(experiment):
    client, experiment_id = experiment
    outcomes: list[tuple[str, str]] = []
    start = threading.Barrier(4)

    def claim():
        start.wait()
        try:
            run_id = _claim(client, experiment_id)
        except AlreadyTrained as taken:
            outcomes.append(("took", taken.run_id))
            return
        outcomes.append(("trained", run_id))
        time.sleep(0.3)  # the training
        client.set_terminated(run_id, "FINISHED")

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    trained = [run_id for kind, run_id in outcomes if kind == "trained"]
    assert len(outcomes) == 4 and len(trained) == 1, outcomes
    assert {run_id for _, run_id in outcomes} == set(trained)
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == trained


@pytest.mark.parametrize("rival_first", [False, True])
def test_a_stop_signal_in_the_middle_of_a_claim_leaves_no_run_running(experiment, monkeypatch,
                                                                     rival_first):
    """SIGTERM as the claim looks for a rival: raised once the claim's run is kept (it ends
    KILLED) or given way (it is gone); never a RUNNING run behind."""
    client, experiment_id = experiment
    rival = _claim(client, experiment_id) if rival_first else None
    real = runs._rival

    def hit(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    saved = signal.getsignal(signal.SIGTERM)
    stopping.install(signal.SIGTERM)
    monkeypatch.setattr(runs, "_rival", hit)
    try:
        with pytest.raises(stopping.Terminated):
            _claim(client, experiment_id)
    finally:
        signal.signal(signal.SIGTERM, saved)
    running = [r.info.run_id for r in client.search_runs([experiment_id])
               if r.info.status == "RUNNING"]
    assert running == ([rival] if rival_first else [])
