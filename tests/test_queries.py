"""Runs read back from a real store: every run a sweep reused is found, however many."""

from __future__ import annotations

from digitlab.tracking.queries import describe_sweep, reused_runs, sweep_runs
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
    describe_sweep(uri, parent.info.run_id, experiment_id, "What the sweep is.",
                   {run_id: f"seed={n}" for n, run_id in enumerate(reused)})
    parent = client.get_run(parent.info.run_id)
    assert all(len(value) <= 8000 for value in parent.data.tags.values())
    assert reused_runs(parent.data.tags) == reused
    # the UI's description of the parent names and links them, the first 40 of them
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("What the sweep is.\n\nThis sweep reused 250 run(s) FINISHED earlier")
    assert (f"- [seed=0](#/experiments/{experiment_id}/runs/{reused[0]}"
            "?workflowType=machine_learning)") in note
    assert note.count("](#/experiments/") == 40 and note.endswith("… and 210 more (tag "
                                                                   "digitlab.reused)")
    assert sorted(sweep_runs(uri, parent).run_id) == sorted(reused)


def test_the_latest_sweep_is_the_latest_that_trained_or_reused_a_run(tmp_path):
    """A sweep stopped before its first job owns no run: 'the latest sweep' passes over it to
    the latest one that trained or reused runs, and says how many of them were reused."""
    from digitlab.cli.compare import which_sweep
    from digitlab.tracking.queries import find_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = prepare_store(uri, "latest")
    client = client_for(uri)

    def sweep(start: int):
        return client.create_run(experiment_id, start_time=start, tags={"digitlab.jobs": "2"})

    trained = sweep(1000)
    child = client.create_run(experiment_id, tags={"mlflow.parentRunId": trained.info.run_id})
    client.set_terminated(child.info.run_id)
    reused = sweep(2000)
    describe_sweep(uri, reused.info.run_id, experiment_id, "", {child.info.run_id: "seed=0"})
    assert find_sweep(uri, None).info.run_id == reused.info.run_id
    sweep(3000)  # stopped before any job: nobody's results
    found = find_sweep(uri, "latest")
    assert found.info.run_id == reused.info.run_id
    said = which_sweep(found, None, "latest", sweep_runs(uri, found))
    assert "the latest sweep of experiment 'latest' with runs" in said
    assert said.endswith("1 run(s), 1 of them reused as FINISHED by earlier sweeps")


def test_register_says_when_the_same_config_did_better_with_more_epochs(tmp_path, capsys):
    from digitlab.cli.register import _say_longer_budget
    from digitlab.tracking.queries import runs_frame

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = prepare_store(uri, "budget")
    client = client_for(uri)
    made = {}
    for name, epochs, hidden, digest, value in (("short", "5", "64", "d1", 0.9444),
                                                ("long", "20", "64", "d1", 0.9931),
                                                ("wider", "20", "128", "d1", 0.9990),
                                                ("other data", "20", "64", "d2", 0.9999)):
        run = client.create_run(experiment_id, run_name=name, tags={"data.sha256": digest})
        for key, param in (("trainer.epochs", epochs), ("model.hidden", hidden), ("seed", "0")):
            client.log_param(run.info.run_id, key, param)
        client.log_metric(run.info.run_id, "best_val_accuracy", value)
        client.set_terminated(run.info.run_id)
        made[name] = run.info.run_id
    runs = runs_frame(uri, [experiment_id]).set_index("tags.mlflow.runName", drop=False)
    _say_longer_budget(uri, runs.loc["short"], "best_val_accuracy")
    said = capsys.readouterr().out
    assert said.startswith(f"note: run {made['long']} (long, not of this sweep) is the same "
                           "config trained for 20 epochs, not 5, with best_val_accuracy 0.9931")
    assert said.strip().endswith(f"run_id={made['long']}")
    _say_longer_budget(uri, runs.loc["long"], "best_val_accuracy")  # only other configs beat it
    assert capsys.readouterr().out == ""
