"""Runs read back from a real store: every run a sweep reused is found, however many."""

from __future__ import annotations

from digitlab.tracking.queries import reused_runs, set_reused_runs, sweep_runs
from digitlab.tracking.store import client_for, prepare_store


def test_a_sweep_finds_every_run_it_reused_past_one_tags_8000_characters(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = prepare_store(uri, "reuse")
    client = client_for(uri)
    reused = []
    for _ in range(250):  # ≈ 8,250 characters of ids: two tags
        run = client.create_run(experiment_id)
        client.set_terminated(run.info.run_id)
        reused.append(run.info.run_id)
    parent = client.create_run(experiment_id)
    set_reused_runs(uri, parent.info.run_id, reused)
    parent = client.get_run(parent.info.run_id)
    assert all(len(value) <= 8000 for value in parent.data.tags.values())
    assert reused_runs(parent.data.tags) == reused
    assert sorted(sweep_runs(uri, parent).run_id) == sorted(reused)
