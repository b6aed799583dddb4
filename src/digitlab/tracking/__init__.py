"""The tracking package, the only one that imports MLflow: the store, runs, params, metrics,
artifacts, the model. It receives records and files from the runner and never calls back into
training.

    store         the store's URI, checks and atomic creation; the experiment made ready
    schema        the schema revision this MLflow writes, remembered per install
    client        one MLflow client per store, for every read and write
    reaping       runs left RUNNING by a dead process, marked KILLED
    tracker       the runner's Tracker: finds FINISHED runs, opens new ones
    runs          parent runs, the run log the runner writes into, a run's end
    epochs        a run's per-epoch metrics: journaled at once, written to the store in batches
    model         the pyfunc model, the registry, loading a model back
    queries       runs read back as tables and histories; files and tags added later
"""

import os

# an offline machine must not wait on telemetry; set before mlflow is imported
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in job logs
# a tracking server that is down: MLflow's defaults (7 retries, backoff factor 2, 120 s timeout)
# retry one request for ≈ 4 minutes, a sweep for hours; these give up after ≈ 10 s per request
# to a server that refuses connections (3 retries, 1 + 2 + 4 s), 4 × 30 s to one that hangs
HTTP_RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
                       "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                       "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
for _name, _value in HTTP_RETRY_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

# each name is looked up in its module on first use, so a command that only reads a SQLite store
# (a run found FINISHED, a ready experiment) never imports MLflow (≈ 1.2 s)
_EXPORTS = {
    "digitlab.tracking.client": ["PARENT_TAG", "client_for"],
    "digitlab.tracking.model": ["NetworkModel", "alias_target", "load_pyfunc",
                                "register_run_model"],
    "digitlab.tracking.queries": ["PARENT_KINDS", "artifact_files", "download",
                                  "experiment_ids", "find_sweep", "get_run", "log_files", "log_table", "metric_history", "reused_runs",
                                  "runs_by_id", "runs_frame", "set_reused_runs", "set_run_tag",
                                  "store_status", "sweep_runs"],
    "digitlab.tracking.reaping": ["HOST_TAG", "PID_TAG", "mark_dead_runs_killed",
                                  "process_alive"],
    "digitlab.tracking.runs": ["MlflowRunLog", "end_run", "resume_parent_run",
                               "start_parent_run"],
    "digitlab.tracking.store": ["StoreError", "artifact_root", "busy_seconds", "check_store",
                                "default_uri", "prepare_store", "resolve_uri"],
    "digitlab.tracking.tracker": ["MlflowTracker"],
    "mlflow.exceptions": ["MlflowException"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = ["HTTP_RETRY_DEFAULTS", *sorted(_MODULE_OF)]


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'digitlab.tracking' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(_MODULE_OF[name]), name)
