"""A grid swept with successive halving (`train.py -m … hydra.sweeper.prune=halving`): the
worse configs stop at a rung, the rest go on in the same runs, the records say which stopped
where, the same command again trains nothing, and a sweep stopped between rungs resumes without
training a rung again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, pipeline, runs_of, store

# 4 configs × 2 seeds, rungs at 1, 2 and 4 epochs: 4 configs, then 2, then 1
GRID = ("-m", "model.hidden=8,16", "optim.lr=0.05,0.5", "seed=0,1", "trainer.epochs=4",
        "hydra.sweeper.prune=halving", "hydra.sweeper.prune_eta=2", "tracking.log_model=false")


def _children(uri: str):
    return [r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags]


def _config(run) -> tuple[str, str]:
    return run.data.params["model.hidden"], run.data.params["optim.lr"]


def _mean_score_at(runs, epochs: int, client) -> dict:
    """Each config's mean over its seeds of the best val_accuracy up to `epochs`."""
    scores: dict = {}
    for run in runs:
        curve = [m.value for m in sorted(client.get_metric_history(run.info.run_id,
                                                                   "val_accuracy"),
                                         key=lambda m: m.step) if m.step >= 1]
        scores.setdefault(_config(run), []).append(max(curve[:epochs]))
    return {config: sum(v) / len(v) for config, v in scores.items()}


def test_a_halving_sweep_stops_the_worse_configs_where_it_says_and_trains_nothing_again(tmp_path):
    from mlflow import MlflowClient

    uri = store(tmp_path)
    done = pipeline("train.py", *GRID, f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rung 1 of 3: the best 2 of 4 configs by best_val_accuracy at epoch 1" in done.stdout
    assert "rung 2 of 3: the best 1 of 2 configs by best_val_accuracy at epoch 2" in done.stdout
    assert "8 finished, 0 skipped (already FINISHED), 0 failed" in done.stdout
    # 8 runs × 1 epoch, 4 × 1 more, 2 × 2 more, against 8 × 4
    assert ("successive halving: 6 of 8 runs stopped early (tagged digitlab.pruned); 16 epochs "
            "trained of the full grid's 32 (50%)") in done.stdout

    client, runs = MlflowClient(uri), _children(uri)
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    stopped = [r for r in runs if r.data.tags["digitlab.pruned"] == "true"]
    went_on = [r for r in runs if r.data.tags["digitlab.pruned"] == "false"]
    assert len(stopped) == 6 and len(went_on) == 2
    for run in stopped:  # its numbers are those of the epoch and rung it stopped at
        epoch = run.data.tags["digitlab.pruned_epoch"]
        assert run.data.tags["digitlab.rung"] == {"1": "1", "2": "2"}[epoch]
        assert run.data.metrics["epochs_run"] == float(epoch)
        assert run.data.tags["digitlab.config_hash"].endswith(f" pruned at {epoch}")
        assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == [
            "checkpoint/training_state.pkl"]  # its state, to go on from had it survived
    winner = {_config(r) for r in went_on}
    assert len(winner) == 1  # one config, all its seeds
    for run in went_on:
        assert run.data.metrics["epochs_run"] == 4.0 and run.data.tags["digitlab.rung"] == "3"
        assert "digitlab.pruned_epoch" not in run.data.tags
        assert " " not in run.data.tags["digitlab.config_hash"]
    # each rung kept the configs with the best mean of their seeds' scores at its epoch
    at_1, at_2 = _mean_score_at(runs, 1, client), _mean_score_at(runs, 2, client)
    second_rung = {_config(r) for r in runs if r.data.metrics["epochs_run"] >= 2}
    assert second_rung == set(sorted(at_1, key=at_1.get)[-2:])
    assert winner == {max(second_rung, key=at_2.get)}

    stopped_note = "Stopped early (by the search's pruner or a halving sweep)"
    compared = pipeline("compare.py", f"tracking.uri={uri}", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert stopped_note in compared.stdout
    html = pipeline("compare.py", "format=html", f"out={tmp_path / 'html'}", f"tracking.uri={uri}",
                    cwd=tmp_path)
    assert html.returncode == 0, html.stderr[-2000:]
    page = next((tmp_path / "html").glob("*/report.html")).read_text()
    assert stopped_note.replace("'", "&#39;") in page

    again = pipeline("train.py", *GRID, f"tracking.uri={uri}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 finished, 8 skipped (already FINISHED), 0 failed" in again.stdout
    assert "0 epochs trained of the full grid's 32" in again.stdout
    assert len(_children(uri)) == 8  # no run added


def test_a_halving_sweep_stopped_between_rungs_resumes_without_training_a_rung_again(tmp_path):
    """With joblib's workers: Ctrl-C once the first rung is ranked, then the same command (a
    run cut off as it goes on: tests/test_halving.py)."""
    uri = store(tmp_path)
    args = [*GRID, f"tracking.uri={uri}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    output = tmp_path / "first.log"
    with open(output, "w") as log:  # a file: a pipe nobody reads could fill and block
        first = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "train.py"), *args],
                                 cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while "rung 1 of 3" not in output.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 130, output.read_text()[-3000:]
    first_runs = {r.info.run_id: r for r in _children(uri)}
    assert len(first_runs) == 8 and all(r.info.status != "RUNNING" for r in first_runs.values())

    resumed = pipeline("train.py", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "rung 1 of 3: the best 2 of 4 configs" in resumed.stdout
    runs = _children(uri)
    assert {r.info.run_id for r in runs} == set(first_runs)  # went on in the same runs
    assert all(r.info.status == "FINISHED" and "error" not in r.data.tags for r in runs)
    # the first rung's 8 epochs are not trained again: at most the 8 of the later rungs
    trained = int(resumed.stdout.split("successive halving:")[1].split(" epochs trained")[0]
                  .rsplit(" ", 1)[1])
    assert trained <= 8, resumed.stdout
    assert sorted(r.data.metrics["epochs_run"] for r in runs) == [1, 1, 1, 1, 2, 2, 4, 4]


def test_a_config_whose_runs_fail_counts_as_worst_and_keeps_its_reason(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "-m", "optim.lr=0.05,0.5,500", "model.activation=relu",
                    "model.output=identity", "model.loss=quadratic", "model.init=normal",
                    "trainer.epochs=2", "hydra.sweeper.prune=halving", "hydra.sweeper.prune_eta=2",
                    "tracking.log_model=false", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 1  # a job failed
    assert "rung 1 of 2: the best 1 of 3 configs" in done.stdout
    by_lr = {r.data.params["optim.lr"]: r for r in _children(uri)}
    assert by_lr["500.0"].info.status == "FAILED"
    assert "training diverged" in by_lr["500.0"].data.tags["error"]
    assert "training diverged" in done.stderr  # the summary names the failed job and why
    went_on = [lr for lr, r in by_lr.items() if r.data.tags.get("digitlab.pruned") == "false"]
    assert went_on in (["0.05"], ["0.5"]) and by_lr[went_on[0]].data.metrics["epochs_run"] == 2


@pytest.mark.parametrize("args, said", [
    (["-m", "seed=0,1", "hydra.sweeper.prune_eta=1"],
     "hydra.sweeper.prune_eta=1: give an integer ≥ 2 (each rung keeps the best 1/η of the configs)"),
    (["-m", "seed=0,1", "trainer.epochs=3", "hydra.sweeper.prune_min_epochs=3"],
     "hydra.sweeper.prune_min_epochs=3: give an integer ≥ 1 and below trainer.epochs=3"),
    (["seed=0"], "hydra.sweeper.prune=halving: stops the worse configs of a sweep; add -m"),
    (["-m", "seed=0,1", "data.val_mode=none"],
     "hydra.sweeper.prune_metric=best_val_accuracy: the runs log no validation score"),
    (["-m", "seed=0,1", "hydra.sweeper.prune_eta=abc"], "hydra.sweeper.prune_eta=abc: give an"),
    (["-m", "seed=0,1", "hydra.sweeper.prune_etta=2"],
     "hydra.sweeper.prune_etta=2: no such key, so it would change nothing"),
])
def test_a_prune_key_that_cannot_act_is_one_line_exit_2_and_makes_nothing(tmp_path, args, said):
    done = pipeline("train.py", *args, "hydra.sweeper.prune=halving",
                    f"tracking.uri={store(tmp_path)}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digitlab: error: ") and said in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # no store, no sweep folder
