"""The runner's Tracker for MLflow: runs in one experiment of one store, through its client."""

from __future__ import annotations

from contextlib import AbstractContextManager

from digitlab import tags as tag


class MlflowTracker:
    """Runs in one experiment of one store, as children of `parent_run_id` when given."""

    def __init__(self, uri: str, experiment_id: str, parent_run_id: str | None = None):
        self.uri, self.experiment_id, self.parent_run_id = uri, experiment_id, parent_run_id

    def finished_run(self, config_hash: str) -> tuple[str, dict[str, float]] | None:
        from digitlab.tracking.client import client_for

        found = client_for(self.uri).search_runs(
            [self.experiment_id], f"tags.`{tag.IDENTITY}` = '{config_hash}' "
                                  "and attributes.status = 'FINISHED'", max_results=1)
        return (found[0].info.run_id, found[0].data.metrics) if found else None

    def run(self, name: str, params: dict[str, str],
            tags: dict[str, str]) -> AbstractContextManager:
        from digitlab.tracking.runs import open_run

        return open_run(self.uri, self.experiment_id, self.parent_run_id, name, params, tags)
