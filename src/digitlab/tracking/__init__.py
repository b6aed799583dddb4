"""The tracking package, the only one that imports MLflow: the store, runs, params, metrics,
artifacts, the model. It receives records and files from the runner and never calls back into
training.

    store     the store's URI, checks and atomic creation; one client per store
    reaping   runs left RUNNING by a dead process, marked KILLED
    runs      parent runs, the run log the runner writes into, a run's end
    model     the pyfunc model, the registry, loading a model back
    queries   runs read back as tables and histories; files and tags added later
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

from mlflow.exceptions import MlflowException  # noqa: E402

from digitlab.tracking.model import (NetworkModel, alias_target, load_pyfunc,  # noqa: E402
                                     register_run_model)
from digitlab.tracking.queries import (artifact_files, download, find_sweep,  # noqa: E402
                                       get_run, log_files, log_table, metric_history,
                                       runs_by_id, runs_frame, set_run_tag, store_status,
                                       sweep_runs)
from digitlab.tracking.reaping import (HOST_TAG, PID_TAG, mark_dead_runs_killed,  # noqa: E402
                                       process_alive)
from digitlab.tracking.runs import (PARENT_TAG, MlflowRunLog, MlflowTracker,  # noqa: E402
                                    end_run, resume_parent_run, start_parent_run)
from digitlab.tracking.store import (StoreError, artifact_root, busy_seconds,  # noqa: E402
                                     check_store, client_for, default_uri, fluent_uri,
                                     prepare_store, resolve_uri)

__all__ = ["HOST_TAG", "HTTP_RETRY_DEFAULTS", "PARENT_TAG", "PID_TAG",
           "MlflowException", "MlflowRunLog", "MlflowTracker", "NetworkModel", "StoreError",
           "alias_target", "artifact_files", "artifact_root", "busy_seconds", "check_store", "client_for",
           "default_uri", "download", "end_run", "find_sweep", "fluent_uri", "get_run",
           "load_pyfunc", "log_files", "log_table", "mark_dead_runs_killed", "metric_history",
           "prepare_store", "process_alive", "register_run_model", "resolve_uri",
           "resume_parent_run", "runs_by_id", "runs_frame", "set_run_tag", "start_parent_run",
           "store_status", "sweep_runs"]
