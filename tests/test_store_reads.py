"""The store read with sqlite3 alone (digitlab.tracking.sqlite_reads) gives what MLflow's client
gives, and the schema head MLflow loads from its migration scripts is remembered per install."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys

import pytest
from conftest import client, store

from digitlab import tracking
from digitlab.tracking import schema, sqlite_reads
from digitlab.tracking.store import _ready_experiment, sqlite_path


def _dead_pid() -> str:
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()


def test_a_finished_run_is_found_as_mlflow_finds_it(tmp_path):
    uri = store(tmp_path)
    experiment_id = tracking.prepare_store(uri, "digitlab")
    c = client(uri)
    made = {}
    for name, status, tag in (("old", "FINISHED", "x"), ("new", "FINISHED", "x"),
                              ("failed", "FAILED", "x"), ("deleted", "FINISHED", "x"),
                              ("other", "FINISHED", "y")):
        run = c.create_run(experiment_id, run_name=name, tags={"digitlab.config_hash": tag})
        c.log_metric(run.info.run_id, "test_accuracy", 0.9, step=1)
        c.log_metric(run.info.run_id, "test_accuracy", 0.95, step=2)  # the latest is kept
        c.log_metric(run.info.run_id, "val_loss", math.nan)
        c.set_terminated(run.info.run_id, status)
        made[name] = run.info.run_id
    c.delete_run(made["deleted"])
    db = sqlite_path(uri)
    for tag in ("x", "y", "z"):
        found = c.search_runs([experiment_id], f"tags.`digitlab.config_hash` = '{tag}' and "
                                               "attributes.status = 'FINISHED'", max_results=1)
        ours = sqlite_reads.finished_run(db, experiment_id, "digitlab.config_hash", tag)
        if not found:
            assert ours is None
            continue
        run_id, metrics = ours
        assert run_id == found[0].info.run_id
        assert metrics.keys() == found[0].data.metrics.keys()
        assert metrics["test_accuracy"] == found[0].data.metrics["test_accuracy"] == 0.95
        assert math.isnan(metrics["val_loss"]) and math.isnan(found[0].data.metrics["val_loss"])
    assert sqlite_reads.finished_run(db, experiment_id, "digitlab.config_hash", "x")[0] == \
        made["new"]


def test_a_ready_experiment_is_read_and_one_with_a_dead_run_goes_through_mlflow(tmp_path):
    uri = store(tmp_path)
    experiment_id = tracking.prepare_store(uri, "digitlab")
    db = sqlite_path(uri)
    assert _ready_experiment(db, "other") is None  # to be created by MLflow
    c = client(uri)
    host = socket.gethostname()
    c.create_run(experiment_id, tags={tracking.HOST_TAG: host, tracking.PID_TAG: str(os.getpid())})
    c.create_run(experiment_id, tags={tracking.HOST_TAG: "elsewhere", tracking.PID_TAG: "1"})
    assert _ready_experiment(db, "digitlab") == experiment_id  # alive, or not ours to judge
    c.create_run(experiment_id, tags={tracking.HOST_TAG: host, tracking.PID_TAG: _dead_pid()})
    assert _ready_experiment(db, "digitlab") is None  # a run to mark KILLED
    c.delete_experiment(experiment_id)
    assert _ready_experiment(db, "digitlab") is None


def test_the_schema_head_is_remembered_and_is_mlflows(tmp_path, monkeypatch):
    import mlflow.store.db.utils as db_utils

    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path))
    schema.install()
    loaded = schema._load_migrations()  # MLflow's own, from its migration scripts
    schema.schema_head.cache_clear()
    assert schema.schema_head() == loaded
    remembered = list((tmp_path / "mlflow-schema").iterdir())
    assert [p.read_text() for p in remembered] == [loaded]
    assert db_utils._get_latest_schema_revision is schema.schema_head  # MLflow's check reads it

    def no_scripts():
        raise AssertionError("the migration scripts were loaded again")

    monkeypatch.setattr(schema, "_load_migrations", no_scripts)
    schema.schema_head.cache_clear()
    assert schema.schema_head() == loaded  # from the file
    remembered[0].write_text("")  # an empty file is not an answer
    schema.schema_head.cache_clear()
    with pytest.raises(AssertionError, match="loaded again"):
        schema.schema_head()
    schema.schema_head.cache_clear()
