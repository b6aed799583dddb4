"""The only module that imports MLflow: the store, runs, params, metrics, artifacts, the model.

It receives records and files from the runner and never calls back into training.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from filelock import FileLock  # noqa: E402
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.models import ModelSignature, infer_signature  # noqa: E402
from mlflow.types import ColSpec, DataType, Schema  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from digitlab import faults  # noqa: E402
from digitlab.data import Split  # noqa: E402
from digitlab.runner import ModelBundle  # noqa: E402
from digitlab.stopping import Terminated, deferred  # noqa: E402
from digitlab.training import EpochRecord  # noqa: E402

log = logging.getLogger(__name__)


class _StoreErrorsReportedOnce(logging.Filter):
    """MLflow logs every SQLAlchemy error with its traceback before raising it; digitlab tells
    the raised error in one line (digitlab.faults), so the log's copy is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("SQLAlchemy database error")


logging.getLogger("mlflow.store.db.utils").addFilter(_StoreErrorsReportedOnce())

PARENT_TAG = "mlflow.parentRunId"
HOST_TAG, PID_TAG = "digitlab.host", "digitlab.pid"


def default_uri(project_root: Path) -> str:
    return f"sqlite:///{(project_root / 'mlruns' / 'mlflow.db').resolve()}"


def resolve_uri(configured: str | None, project_root: Path) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else SQLite under <project>/mlruns."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(project_root)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # a relative SQLite path would depend on the working folder (Hydra changes it)
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite store (mlruns/artifacts); a server chooses its own."""
    db = _sqlite_path(uri)
    return (db.parent / "artifacts").resolve().as_uri() if db else None


class StoreError(RuntimeError):
    """The tracking store cannot be used; raised before any training starts."""


BUSY_ENV = "DIGITLAB_STORE_BUSY_SECONDS"
# how long a store locked by another process is waited for before giving up: MLflow's own
# SQLite busy timeout, so the start-up check and a write in the middle of a run wait alike
DEFAULT_BUSY_SECONDS = faults.MLFLOW_BUSY_SECONDS


def busy_seconds() -> float:
    text = os.environ.get(BUSY_ENV, "")
    try:
        value = float(text) if text else DEFAULT_BUSY_SECONDS
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise StoreError(f"{BUSY_ENV}={text!r}: expected a number of seconds ≥ 0 "
                         f"(default {DEFAULT_BUSY_SECONDS:g}); fix or unset it.")
    return value


def check_store(uri: str) -> None:
    """Fail fast, with the fix, on an unreachable server, an unwritable folder, a corrupt or
    locked SQLite file: never after an hour of training."""
    if uri.startswith(("http://", "https://")):
        import urllib.request

        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5).read()
        except Exception as exc:
            raise StoreError(f"tracking.uri={uri}: the tracking server does not answer ({exc}); "
                             "start it (mlflow server) or point tracking.uri elsewhere.") from None
        _check_login(uri)
        return
    db = _sqlite_path(uri)
    if db is None:
        return
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{db.parent}: cannot create the store's folder ({exc.strerror}); "
                         "choose a writable place with tracking.uri=sqlite:////path/mlflow.db."
                         ) from None
    if not os.access(db.parent, os.W_OK) or (db.exists() and not os.access(db, os.W_OK)):
        raise StoreError(f"{db if db.exists() else db.parent}: not writable; fix its permissions "
                         "or choose another store with tracking.uri=sqlite:////path/mlflow.db.")
    if not db.exists() or db.stat().st_size == 0:
        return
    import sqlite3

    busy = busy_seconds()
    try:
        with sqlite3.connect(db, timeout=busy) as connection:
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            versions = ([row[0] for row in connection.execute(
                "SELECT version_num FROM alembic_version")] if "alembic_version" in tables else [])
            connection.execute("BEGIN IMMEDIATE")  # waits up to `busy` seconds for a writer
            connection.rollback()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise StoreError(f"{db}: locked by another process for more than {busy:g} s; "
                             "wait for it to finish or stop it.") from None
        raise StoreError(f"{db}: not a usable SQLite database ({exc}); move it aside (the runs "
                         "in it cannot be read) or choose another tracking.uri.") from None
    _check_schema(db, tables, versions)


def _check_login(uri: str) -> None:
    """A server with authentication (`make server` beyond loopback) takes the login MLflow's
    client sends from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD."""
    import base64
    import urllib.error
    import urllib.request

    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    request = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
                                                       "?max_results=1")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        urllib.request.urlopen(request, timeout=10).read()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            told = (f"refused the login of MLFLOW_TRACKING_USERNAME={user}" if user and password
                    else "requires a login")
            raise StoreError(f"tracking.uri={uri}: the tracking server {told}; set "
                             "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to an account "
                             "its admin created.") from None
    except OSError:
        pass  # answered /health: a failure here shows in the run's own requests


def _check_schema(db: Path, tables: set[str], versions: list[str]) -> None:
    """An existing SQLite file is an MLflow store at this MLflow's schema, or a StoreError."""
    if not tables:
        return  # an empty database: made into a store like a new file
    if not tables & {"experiments", "alembic_version"}:
        raise StoreError(f"{db}: an SQLite database of another application (tables "
                         f"{', '.join(sorted(tables)[:4])}), not an MLflow store: MLflow would add "
                         "its tables to it; choose another tracking.uri=sqlite:////path/mlflow.db.")
    from mlflow.store.db.utils import _get_latest_schema_revision  # MLflow checks it on open too

    cut = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    head = _get_latest_schema_revision()
    if cut or "experiments" not in tables or not versions:
        detail = f"table {cut[0]} of an unfinished migration" if cut else "no schema version"
        raise StoreError(f"{db}: a half-made MLflow store ({detail}): its creation or upgrade was "
                         f"cut off; if it holds no runs you need, delete it (rm {db}), else "
                         f"restore it from a backup and run `mlflow db upgrade sqlite:///{db}`.")
    if versions[0] != head:
        raise StoreError(f"{db}: an MLflow store of another schema version ({versions[0]}; this "
                         f"MLflow writes {head}); back it up, then run `mlflow db upgrade "
                         f"sqlite:///{db}`, or install the MLflow that wrote it.")


def _store_is_new(db: Path) -> bool:
    if not db.exists() or db.stat().st_size == 0:
        return True
    import sqlite3

    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


def _create_sqlite_store(db: Path, uri: str) -> None:
    """MLflow creates a store's tables and then runs some 60 migrations, ≈ 1 s in which a stop
    would leave a half-migrated file that no later command can open. Here the store is made
    under a temporary name and renamed into place once whole: a stop at any instant leaves
    either no store or a whole one. Called under the store's file lock."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for leftover in db.parent.glob(f".{db.name}.*.creating"):  # of a creation cut off earlier
        leftover.unlink(missing_ok=True)
    making = db.parent / f".{db.name}.{os.getpid()}.creating"
    making_uri = f"sqlite:///{making}"
    try:
        SqlAlchemyStore(making_uri, artifact_root(uri))
    finally:
        engine = SqlAlchemyStore._engine_map.pop(making_uri, None)
        if engine is not None:
            engine.dispose()
    if db.exists():  # an empty file: replaced (a process that has it open reads no tables)
        os.replace(making, db)
        return
    try:  # a hard link never replaces a store that another program created meanwhile
        os.link(making, db)
    except FileExistsError:
        pass
    making.unlink()


def prepare_store(uri: str, experiment: str) -> str:
    """Check the store, create (or migrate) it and the experiment once, under a file lock, before
    any job starts; mark runs of dead processes KILLED. Returns the experiment id."""
    check_store(uri)
    db = _sqlite_path(uri)
    try:
        if db is not None:
            with FileLock(str(db) + ".lock", timeout=120):
                # asked again under the lock: another process may have made it meanwhile
                if _store_is_new(db):
                    _create_sqlite_store(db, uri)
                return _prepare(uri, experiment)
        return _prepare(uri, experiment)
    except MlflowException as exc:
        raise StoreError(f"tracking.uri={uri}: {exc.message.splitlines()[0]}") from None


def _prepare(uri: str, experiment: str) -> str:
    client = MlflowClient(uri)  # creates and migrates the schema of a SQLite store
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            experiment_id = client.create_experiment(experiment,
                                                     artifact_location=artifact_root(uri))
        except MlflowException:  # created meanwhile by another process (server stores)
            experiment_id = client.get_experiment_by_name(experiment).experiment_id
    else:
        experiment_id = found.experiment_id
    mark_dead_runs_killed(client, experiment_id)
    return experiment_id


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def mark_dead_runs_killed(client: MlflowClient, experiment_id: str) -> list[str]:
    """RUNNING runs started on this host by a process that no longer exists → KILLED."""
    killed = []
    running = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                 max_results=5000)
    for run in running:
        tags = run.data.tags
        if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
            continue
        if not _process_alive(int(tags[PID_TAG])):
            client.set_tag(run.info.run_id, "error",
                           f"process {tags[PID_TAG]} died while the run was RUNNING (killed by a "
                           "signal, e.g. the out-of-memory killer, or its machine stopped)")
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    if killed:
        log.warning("marked %d run(s) of dead processes KILLED: %s", len(killed), killed)
    return killed


def _process_tags() -> dict[str, str]:
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


@deferred()  # every write to the store: a stop signal waits for it (see digitlab.stopping)
def start_parent_run(uri: str, experiment_id: str, name: str, tags: dict[str, str]) -> str:
    run = MlflowClient(uri).create_run(experiment_id, run_name=name,
                                       tags={**tags, **_process_tags()})
    return run.info.run_id


@deferred()
def resume_parent_run(uri: str, experiment_id: str, key: str, value: str, name: str,
                      tags: dict[str, str]) -> tuple[str, bool]:
    """The parent run tagged key=value (reopened as RUNNING by this process), or a new one:
    (run id, whether it was resumed). A search interrupted and started again keeps one parent."""
    client = MlflowClient(uri)
    found = client.search_runs([experiment_id], f"tags.`{key}` = '{value}'",
                               order_by=["attributes.start_time ASC"], max_results=1)
    if not found:
        return start_parent_run(uri, experiment_id, name, {**tags, key: value}), False
    run_id = found[0].info.run_id
    client.update_run(run_id, status="RUNNING")
    for tag, tag_value in {**tags, **_process_tags()}.items():
        client.set_tag(run_id, tag, tag_value)
    return run_id, True


def process_alive(host: str | None, pid: str | None) -> bool:
    """Whether the process that wrote these host/pid tags may still run (another host: assume so)."""
    if host != socket.gethostname() or not pid:
        return True
    return _process_alive(int(pid))


@deferred()
def end_run(uri: str, run_id: str, status: str) -> None:
    MlflowClient(uri).set_terminated(run_id, status)


def _status_of(exc: BaseException | None) -> str:
    if exc is None:
        return "FINISHED"
    return "KILLED" if isinstance(exc, (KeyboardInterrupt, Terminated)) else "FAILED"


@deferred()
def _record_error(client: MlflowClient, run_id: str, exc: BaseException) -> None:
    try:
        client.set_tag(run_id, "error", f"{type(exc).__name__}: {exc}"[:5000])
    except Exception as tag_error:  # the run's own error is the one to raise
        log.warning("could not tag run %s with its error: %s", run_id, tag_error)


@deferred()
def _end_run(run_id: str, status: str, error: BaseException | None) -> None:
    try:
        mlflow.end_run(status)
    except Exception as end_error:
        if error is None:
            raise
        # the next prepare_store marks it KILLED once this process is gone
        log.warning("could not mark run %s %s: %s", run_id, status, end_error)


def _remove_local_artifacts(client: MlflowClient, run_id: str) -> None:
    """A run's artifacts in a local store, removed: what a full disk let it write is partial."""
    import shutil
    from urllib.parse import unquote, urlparse

    try:
        location = urlparse(client.get_run(run_id).info.artifact_uri)
    except Exception as exc:
        log.warning("could not find run %s's artifacts to remove: %s", run_id, exc)
        return
    if location.scheme == "file":
        shutil.rmtree(unquote(location.path), ignore_errors=True)
        log.warning("removed run %s's partial artifacts", run_id)


class MlflowRunLog:
    """Logs one run; every per-epoch record is one log_batch call."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id

    @deferred()
    def set_tags(self, tags: dict[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    @deferred()
    def log_epoch(self, record: EpochRecord) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(key, value, now, record.epoch) for key, value in record.metrics().items()])

    @deferred()
    def log_metrics(self, metrics: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, 0)
                                                    for k, v in metrics.items()])

    @deferred()
    def log_datasets(self, split: Split) -> None:
        from mlflow.data import from_numpy

        inputs = []
        for context, x, y in (("training", split.x_train, split.y_train),
                              ("validation", split.x_val, split.y_val),
                              ("test", split.x_test, split.y_test)):
            if len(y):
                dataset = from_numpy(x, targets=y, name=f"{split.name}-{context}",
                                     digest=split.digest[:16])
                inputs.append(DatasetInput(dataset._to_mlflow_entity(),
                                           [InputTag("mlflow.data.context", context)]))
        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, inputs)
                return
            except MlflowException as exc:
                # parallel jobs insert the same dataset row at once: MLflow checks, then inserts,
                # so one loses on the unique constraint (SQLite: "UNIQUE constraint failed",
                # PostgreSQL through a server: "duplicate key value violates unique constraint");
                # on retry the row exists and is reused
                if "unique constraint" not in str(exc).lower() or attempt == 2:
                    raise
                time.sleep(0.1 * (attempt + 1))

    @deferred()
    def log_artifacts(self, folder: Path) -> None:
        self.client.log_artifacts(self.run_id, str(folder))

    @deferred()
    def log_model(self, bundle: ModelBundle) -> None:
        # raw integer pixels, matched by position (no names): numpy rows of pixels and a CSV
        # with any pixel header are both accepted; integers widen to long without loss
        example = bundle.example.astype(np.int64)
        model = NetworkModel()
        model.load_arrays(bundle.arrays, bundle.spec)
        signature = ModelSignature(
            inputs=Schema([ColSpec(DataType.long) for _ in range(example.shape[1])]),
            outputs=infer_signature(example, model.predict(None, example)).outputs)
        with tempfile.TemporaryDirectory(prefix="digitlab-model-") as tmp:
            arrays, spec = Path(tmp) / "network.npz", Path(tmp) / "network.json"
            np.savez(arrays, **bundle.arrays)
            spec.write_text(json.dumps(bundle.spec))
            code = Path(tmp) / "digitlab_model.py"  # models from code: nothing is pickled
            code.write_text(MODEL_CODE)
            mlflow.pyfunc.log_model(
                name="model", python_model=str(code),
                artifacts={"arrays": str(arrays), "spec": str(spec)},
                signature=signature, input_example=example,
                # explicit requirements: inferring them would import-trace in a subprocess
                pip_requirements=[f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}",
                                  "digitlab"],
            )


class MlflowTracker:
    """Runs in one experiment of one store, as children of `parent_run_id` when given."""

    def __init__(self, uri: str, experiment_id: str, parent_run_id: str | None = None):
        self.uri, self.experiment_id, self.parent_run_id = uri, experiment_id, parent_run_id

    def finished_run(self, config_hash: str) -> tuple[str, dict[str, float]] | None:
        found = MlflowClient(self.uri).search_runs(
            [self.experiment_id], f"tags.`digitlab.config_hash` = '{config_hash}' "
                                  "and attributes.status = 'FINISHED'", max_results=1)
        return (found[0].info.run_id, found[0].data.metrics) if found else None

    @contextmanager
    def run(self, name: str, params: dict[str, str], tags: dict[str, str]) -> Iterator[MlflowRunLog]:
        client = MlflowClient(self.uri)
        tags = {**tags, **_process_tags()}
        if self.parent_run_id:
            tags[PARENT_TAG] = self.parent_run_id
        run_id, error = None, None
        try:
            with deferred():  # a stop signal arriving here is raised once the run exists
                run_id = client.create_run(self.experiment_id, run_name=name,
                                           tags=tags).info.run_id
                mlflow.set_tracking_uri(self.uri)
                mlflow.start_run(run_id=run_id)  # active, for log_model
                items = [Param(k, v[:6000]) for k, v in params.items()]
                for i in range(0, len(items), 100):  # log_batch takes at most 100 params
                    client.log_batch(run_id, params=items[i:i + 100])
            yield MlflowRunLog(client, run_id)
        except BaseException as exc:
            error = exc
            if run_id:
                fault = faults.describe(exc)
                if fault and fault.kind == "disk_full":  # frees the space to record FAILED
                    _remove_local_artifacts(client, run_id)
                _record_error(client, run_id, exc)
            raise
        finally:
            if run_id:
                _end_run(run_id, _status_of(error), error)


MODEL_CODE = """\
import mlflow
from digitlab.tracking import NetworkModel

mlflow.models.set_model(NetworkModel())
"""


class NetworkModel(mlflow.pyfunc.PythonModel):
    """pyfunc model: raw pixels in (one image per row), predicted labels out. Weights are read
    from a plain .npz with allow_pickle=False."""

    def load_context(self, context) -> None:
        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        with np.load(context.artifacts["arrays"], allow_pickle=False) as arrays:
            self.load_arrays(dict(arrays), spec)

    def load_arrays(self, arrays, spec: dict) -> None:
        from digitlab.nn.network import Network

        arrays = dict(arrays)
        self.factor, self.shift = arrays.pop("scale_factor"), arrays.pop("scale_shift")
        self.classes = arrays.pop("classes")
        self.dtype = spec["dtype"]
        self.network = Network.from_state(arrays, activation=spec["activation"],
                                          output=spec["output"], loss=spec["loss"],
                                          quirk=spec["quirk"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        x = np.asarray(model_input, dtype=np.float64) * self.factor + self.shift
        return self.classes[self.network.predict_proba(x.astype(self.dtype)).argmax(axis=1)]


# ---- reading runs back (compare, rerun) -----------------------------------------------------

def find_sweep(uri: str, experiment: str, sweep: str | None = None):
    """The parent run of `sweep` (a run id), or the latest sweep of the experiment."""
    client = MlflowClient(uri)
    if sweep:
        return client.get_run(sweep)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise LookupError(f"no experiment {experiment!r} in {uri}; run a sweep first "
                          "(python pipelines/train.py -m ...) or name it with "
                          "tracking.experiment=<name>")
    parents = client.search_runs([found.experiment_id], "tags.`digitlab.jobs` != ''",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    if not parents:
        raise LookupError(f"experiment {experiment!r} has no sweep yet; run one with -m")
    return parents[0]


def runs_frame(uri: str, experiment_ids: list[str], parent_run_id: str | None = None) -> pd.DataFrame:
    """Runs as MLflow's search_runs table (params.*, metrics.* = last values, tags.*)."""
    mlflow.set_tracking_uri(uri)
    where = f"tags.`{PARENT_TAG}` = '{parent_run_id}'" if parent_run_id else ""
    return mlflow.search_runs(experiment_ids, filter_string=where, max_results=50000)


def sweep_runs(uri: str, parent) -> pd.DataFrame:
    """The runs of a sweep: its children, plus the runs it reused as already FINISHED."""
    runs = runs_frame(uri, [parent.info.experiment_id], parent.info.run_id)
    reused = parent.data.tags.get("digitlab.reused")
    if reused:
        runs = pd.concat([runs, runs_by_id(uri, [parent.info.experiment_id], reused.split(","))],
                         ignore_index=True)
    return runs


def metric_history(uri: str, run_id: str, key: str) -> list[float]:
    points = MlflowClient(uri).get_metric_history(run_id, key)
    return [p.value for p in sorted(points, key=lambda p: p.step)]


@deferred()
def log_files(uri: str, run_id: str, folder: Path, artifact_path: str) -> None:
    MlflowClient(uri).log_artifacts(run_id, str(folder), artifact_path)


@deferred()
def log_table(uri: str, run_id: str, table: pd.DataFrame, artifact_file: str) -> None:
    """A table the MLflow UI shows in its artifact view (and mlflow.load_table reads)."""
    MlflowClient(uri).log_table(run_id, data=table, artifact_file=artifact_file)


def get_run(uri: str, run_id: str):
    return MlflowClient(uri).get_run(run_id)


def download(uri: str, run_id: str, path: str, folder: Path) -> Path:
    """A run's artifact (file or folder) copied into `folder`."""
    return Path(MlflowClient(uri).download_artifacts(run_id, path, str(folder)))


@deferred()
def set_run_tag(uri: str, run_id: str, key: str, value: str) -> None:
    MlflowClient(uri).set_tag(run_id, key, value[:8000])


def runs_by_id(uri: str, experiment_ids: list[str], run_ids: list[str]) -> pd.DataFrame:
    mlflow.set_tracking_uri(uri)
    ids = ", ".join(f"'{r}'" for r in run_ids)
    return mlflow.search_runs(experiment_ids, filter_string=f"attributes.run_id IN ({ids})")


def store_status(uri: str) -> tuple[pd.DataFrame, list]:
    """Runs per experiment and status, and the RUNNING runs whose process is gone (stale)."""
    client = MlflowClient(uri)
    rows, stale = [], []
    for experiment in client.search_experiments():
        runs = client.search_runs([experiment.experiment_id], max_results=50000)
        counts = pd.Series([r.info.status for r in runs], dtype="object").value_counts()
        rows.append({"experiment": experiment.name, "runs": len(runs),
                     **{s: int(counts.get(s, 0)) for s in ("FINISHED", "FAILED", "KILLED",
                                                           "RUNNING")}})
        for run in runs:
            tags = run.data.tags
            if (run.info.status == "RUNNING" and tags.get(HOST_TAG) == socket.gethostname()
                    and tags.get(PID_TAG, "").isdigit() and not _process_alive(int(tags[PID_TAG]))):
                stale.append(run)
    return pd.DataFrame(rows), stale


# ---- the model registry and serving ---------------------------------------------------------

def register_run_model(uri: str, run_id: str, name: str, alias: str,
                       tags: dict[str, str]) -> tuple[str, bool]:
    """Point `name@alias` at the run's model: (version, whether a new version was created).
    A run already registered under `name` keeps its version; only the alias moves."""
    client = MlflowClient(uri, registry_uri=uri)
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        version, created = existing[0].version, False
    else:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        outputs = client.get_run(run_id).outputs
        logged = outputs.model_outputs if outputs else []
        if not logged:
            raise LookupError(f"run {run_id} logged no model")
        # MLflow 3 keeps the model as a LoggedModel of the run, addressed by its id
        source = f"models:/{logged[-1].model_id}"
        version, created = mlflow.register_model(source, name, tags=tags).version, True
    client.set_registered_model_alias(name, alias, version)
    return str(version), created


def alias_target(uri: str, name: str, alias: str) -> str | None:
    """The run id `name@alias` points at, or None when there is no such alias."""
    try:
        return MlflowClient(uri, registry_uri=uri).get_model_version_by_alias(name, alias).run_id
    except MlflowException:
        return None


def load_pyfunc(uri: str, model_uri: str):
    """An MLflow model (models:/name@alias, models:/name/3, runs:/id/model, a folder) and the
    number of pixels per image its signature expects."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    return model, len(model.metadata.get_input_schema().inputs)
