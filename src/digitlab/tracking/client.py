"""One MLflow client per store and process, and MLflow's fluent API pointed at a store."""

from __future__ import annotations

import functools

from mlflow.tracking import MlflowClient

from digitlab.tracking import schema

schema.install()

# the tag by which MLflow nests a run under its parent (the UI's tree of a sweep)
PARENT_TAG = "mlflow.parentRunId"


@functools.cache
def client_for(uri: str) -> MlflowClient:
    """One client per store and process (each MlflowClient builds a store object of its own)."""
    return MlflowClient(uri, registry_uri=uri)


def fluent_uri(uri: str):
    """MLflow's fluent API (search_runs, start_run, log_model, register_model, load_model) reads
    a process-wide tracking URI (and the registry follows it): set for the calls inside, and put
    back as it was, unset included, after them. MLflow's own helper for it (mlflow is pinned)."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    return _use_tracking_uri(uri)
