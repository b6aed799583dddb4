"""One MLflow client per store and process: every read and write of a store goes through it,
never through the fluent API's process-wide tracking URI."""

from __future__ import annotations

import functools

from mlflow.tracking import MlflowClient

# the tag by which MLflow nests a run under its parent (the UI's tree of a sweep)


@functools.cache
def client_for(uri: str) -> MlflowClient:
    """One client per store and process (each MlflowClient builds a store object of its own)."""
    return MlflowClient(uri, registry_uri=uri)
