"""Reads of a SQLite store with sqlite3 alone, for the commands that only look: is the
experiment there, did a process die while its run was RUNNING, did a run of this identity
FINISHED already. Importing MLflow and opening its store object cost ≈ 1.5 s; these queries
cost milliseconds. They read MLflow's own tables (experiments, runs, tags, latest_metrics) of a
store whose schema revision was checked to be this MLflow's (store.check_store); every write
goes through MLflow."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from pathlib import Path

from digitlab.faults import MLFLOW_BUSY_SECONDS
from digitlab.tracking.reaping import HOST_TAG, PID_TAG


def _connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=MLFLOW_BUSY_SECONDS)


def experiment_id(db: Path, name: str) -> str | None:
    """The id of the active experiment `name`, if there is one."""
    with closing(_connect(db)) as connection:
        row = connection.execute("SELECT experiment_id FROM experiments WHERE name = ? AND "
                                 "lifecycle_stage = 'active'", (name,)).fetchone()
    return str(row[0]) if row else None


def running_runs(db: Path, experiment: str) -> list[tuple[str, str | None, str | None]]:
    """(run id, host, pid) of every RUNNING run of the experiment."""
    with closing(_connect(db)) as connection:
        return connection.execute(
            "SELECT r.run_uuid, h.value, p.value FROM runs r "
            "LEFT JOIN tags h ON h.run_uuid = r.run_uuid AND h.key = ? "
            "LEFT JOIN tags p ON p.run_uuid = r.run_uuid AND p.key = ? "
            "WHERE r.experiment_id = ? AND r.status = 'RUNNING' AND r.lifecycle_stage = 'active'",
            (HOST_TAG, PID_TAG, int(experiment))).fetchall()


def finished_run(db: Path, experiment: str, tag: str,
                 value: str) -> tuple[str, dict[str, float]] | None:
    """(run id, latest metrics) of the newest active FINISHED run whose tag `tag` is `value`:
    what MlflowClient.search_runs with that filter and max_results=1 returns."""
    with closing(_connect(db)) as connection:
        row = connection.execute(
            "SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE r.experiment_id = ? AND r.status = 'FINISHED' AND "
            "r.lifecycle_stage = 'active' AND t.key = ? AND t.value = ? "
            "ORDER BY r.start_time DESC, r.run_uuid LIMIT 1",
            (int(experiment), tag, value)).fetchone()
        if row is None:
            return None
        metrics = connection.execute("SELECT key, value, is_nan FROM latest_metrics "
                                     "WHERE run_uuid = ?", (row[0],)).fetchall()
    return row[0], {key: math.nan if is_nan else float(number)
                    for key, number, is_nan in metrics}
