"""Records that say only what happened: a sweep counts its own jobs, every reused run is found,
and the bookkeeping around runs survives folders, caches and stores shared between commands."""

from __future__ import annotations

import json
import socket
import sys

import pytest

from conftest import ROOT, client, dead_pid, pipeline, runs_of, store, sweep_into


def _parents(uri):
    return [r for r in runs_of(uri) if "digitlab.jobs" in r.data.tags]


def test_a_sweep_into_a_used_folder_reports_its_own_jobs_only(tmp_path):
    folder = tmp_path / "sweeps" / "same"
    uri = store(tmp_path)
    common = ("trainer.epochs=1", "tracking.log_model=false", f"tracking.uri={uri}",
              f"hydra.sweep.dir={folder}")
    first = pipeline("train.py", "-m", "seed=0,1,2", *common, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # a tracking server that stopped answering in an earlier sweep left its mark in the folder
    (folder / "digitlab_store_lost").write_text("the tracking server stopped answering")
    second = pipeline("train.py", "-m", "seed=3,4", *common, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "2 finished, 0 skipped (already FINISHED), 0 failed" in second.stdout, second.stdout
    assert "seed=2" not in second.stdout.split("2 finished", 1)[1]
    newest = max(_parents(uri), key=lambda r: r.info.start_time)
    assert newest.info.status == "FINISHED"
    # and a third sweep after a lost server of the second one is not refused either
    token = json.loads((folder / "0" / "digitlab_result.json").read_text())["sweep"]
    (folder / "digitlab_store_lost").write_text(json.dumps(
        {"sweep": token, "line": "the tracking server stopped answering"}))
    third = pipeline("train.py", "-m", "seed=5", *common, cwd=tmp_path)
    assert third.returncode == 0 and "1 finished" in third.stdout, third.stderr[-3000:]


@pytest.mark.parametrize("command", [("compare.py", "all_runs=true"), ("register.py",),
                                     ("rerun.py", "run_id={stale}")])
def test_every_command_that_opens_a_store_marks_dead_runs_killed(tmp_path, command):
    """A run whose process died (a SIGKILLed sweep) is never shown, joined or rerun as RUNNING."""
    from digitlab import tags as tag

    uri, _ = sweep_into(tmp_path, "seed=0", "trainer.epochs=1", "tracking.log_model=false")
    experiment_id = client(uri).get_experiment_by_name("digitlab-digits").experiment_id
    dead = dead_pid()
    stale = client(uri).create_run(experiment_id, tags={
        tag.HOST: socket.gethostname(), tag.PID: dead}).info.run_id
    done = pipeline(command[0], f"tracking.uri={uri}",
                    *(a.format(stale=stale) for a in command[1:]), cwd=tmp_path)
    assert client(uri).get_run(stale).info.status == "KILLED", done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_rerun_refuses_a_parent_and_a_run_that_did_not_finish_in_one_line(tmp_path):
    uri, _ = sweep_into(tmp_path, "seed=0", "trainer.epochs=1", "tracking.log_model=false")
    parent = _parents(uri)[0]
    done = pipeline("rerun.py", f"tracking.uri={uri}", f"run_id={parent.info.run_id}",
                    cwd=tmp_path)
    assert done.returncode == 2 and "is a parent run" in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1
    child = next(r for r in runs_of(uri) if "mlflow.parentRunId" in r.data.tags)
    client(uri).set_terminated(child.info.run_id, "FAILED")
    done = pipeline("rerun.py", f"tracking.uri={uri}", f"run_id={child.info.run_id}",
                    cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        f"digitlab: error: run_id={child.info.run_id}: the run is FAILED, so it has no final "
        f"weights to compare against; train its config again with {sys.executable} "
        f"{ROOT / 'pipelines'}/train.py {child.data.tags['digitlab.overrides']}."]
    assert len(runs_of(uri)) == 2  # nothing was trained
