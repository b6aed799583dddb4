"""Records that say only what happened: a sweep counts its own jobs, every reused run is found,
and the bookkeeping around runs survives folders, caches and stores shared between commands."""

from __future__ import annotations

import json

from conftest import pipeline, runs_of, store


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
    record = json.loads((folder / "digitlab_sweep.json").read_text())
    (folder / "digitlab_store_lost").write_text(json.dumps(
        {"sweep": record["token"], "line": "the tracking server stopped answering"}))
    third = pipeline("train.py", "-m", "seed=5", *common, cwd=tmp_path)
    assert third.returncode == 0 and "1 finished" in third.stdout, third.stderr[-3000:]
