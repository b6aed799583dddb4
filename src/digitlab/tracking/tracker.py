"""The runner's Tracker for MLflow: runs in one experiment of one store. MLflow is imported when a
run starts; a run found FINISHED in a SQLite store is found with sqlite3 alone."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager

from digitlab.runner import IDENTITY_TAG
from digitlab.tracking import sqlite_reads
from digitlab.tracking.store import sqlite_path


class MlflowTracker:
    """Runs in one experiment of one store, as children of `parent_run_id` when given."""

    def __init__(self, uri: str, experiment_id: str, parent_run_id: str | None = None):
        self.uri, self.experiment_id, self.parent_run_id = uri, experiment_id, parent_run_id

    def finished_run(self, config_hash: str) -> tuple[str, dict[str, float]] | None:
        db = sqlite_path(self.uri)
        if db is not None:
            return sqlite_reads.finished_run(db, self.experiment_id, IDENTITY_TAG, config_hash)
        from digitlab.tracking.client import client_for

        found = client_for(self.uri).search_runs(
            [self.experiment_id], f"tags.`{IDENTITY_TAG}` = '{config_hash}' "
                                  "and attributes.status = 'FINISHED'", max_results=1)
        return (found[0].info.run_id, found[0].data.metrics) if found else None

    def run(self, name: str, params: dict[str, str],
            tags: dict[str, str]) -> AbstractContextManager:
        if "digitlab.tracking.runs" not in sys.modules:  # MLflow's import, once per process
            from digitlab import garbage

            with garbage.imports_held():
                import digitlab.tracking.runs  # noqa: F401
        from digitlab.tracking.runs import open_run

        return open_run(self.uri, self.experiment_id, self.parent_run_id, name, params, tags)
