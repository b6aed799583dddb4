"""The store: its URI, its checks (schema, login, lock), its atomic creation, the experiment made
ready. A SQLite file is checked at the door with sqlite3 (is it an MLflow store, whole, of this
MLflow's schema, not locked); everything else goes through MLflow's client.

Faults of the machine and of the store, told in one line: MLflow, SQLAlchemy, requests and
shutil report a full disk, a locked SQLite file or a tracking server that stopped answering as
multi-line exceptions, wrapped one in another; `describe` finds the fault in the chain and says
what it is and what to do, so a run ends with that line rather than a traceback.

Runs left RUNNING by a process that died: found by their host and pid tags, marked KILLED.
Importing this module imports neither MLflow nor SQLAlchemy."""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from filelock import FileLock

from digitlab import tags as tag
from digitlab.files import sqlite_path, sqlite_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)
T = TypeVar("T")


# a tracking server that stops answering: MLflow retries each request 6 times, 0, 2, 4, 8, 16
# and 32 s apart (urllib3's backoff at factor 1), so a restart of a minute costs a wait, not the
# runs in flight; MLflow's own (7 retries at factor 2) wait ≈ 4 min a request, a sweep for hours
SERVER_RETRIES, SERVER_BACKOFF = 6, 1
SERVER_PATIENCE = sum(SERVER_BACKOFF * 2 ** (n - 1) for n in range(2, SERVER_RETRIES + 1))


def _not_a_store_error(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("SQLAlchemy database error")


def _not_a_retry(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Retrying (")


def report_store_errors_once() -> None:
    """MLflow logs every SQLAlchemy error with its traceback before raising it, and urllib3 each
    retry of a request to a server that does not answer; digitlab tells the error that remains
    in one line (`describe`), so those lines are dropped."""
    logging.getLogger("mlflow.store.db.utils").addFilter(_not_a_store_error)
    logging.getLogger("urllib3.connectionpool").addFilter(_not_a_retry)


# how MLflow 3's UI tells a model-training experiment from a GenAI one: it opens the former on
# its runs, the latter on traces and token usage
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = {EXPERIMENT_KIND: "custom_model_development"}


def ui_path(experiment_id: str, run_id: str | None = None) -> str:
    """The MLflow UI's page of an experiment's runs, or of one run, in its model-training view
    (without workflowType MLflow 3 may open a run in its GenAI view)."""
    run = f"/{run_id}" if run_id else ""
    return f"#/experiments/{experiment_id}/runs{run}?workflowType=machine_learning"


@functools.cache
def client_for(uri: str) -> MlflowClient:
    """The store's one MLflow client in this process (each MlflowClient builds a store object of
    its own): every read and write of a store goes through it, never through the fluent API's
    process-wide tracking URI."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def default_uri(project_root: Path) -> str:
    return sqlite_uri((project_root / "mlruns" / "mlflow.db").resolve())


def without_login(uri: str) -> tuple[str, str | None, str | None]:
    """(the URI without a user:password@ part, the user, the password)."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri, None, None
    host = parts.netloc.rpartition("@")[2]
    return (urlunsplit(parts._replace(netloc=host)), unquote(parts.username or ""),
            unquote(parts.password or ""))


def uri_key(uri: str) -> str:
    """The setting a store's URI came from, as an error names it."""
    from_environment = without_login(os.environ.get("MLFLOW_TRACKING_URI", ""))[0]
    return "MLFLOW_TRACKING_URI" if from_environment == uri else "tracking.uri"


def resolve_uri(configured: str | None, project_root: Path) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else SQLite under <project>/mlruns. A login in
    $MLFLOW_TRACKING_URI (https://user:password@host) is handed to MLflow the way it documents,
    as MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, so the URI digitlab uses, logs and
    prints never holds a password (tracking.uri refuses one outright)."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(project_root)
    uri, user, password = without_login(uri)
    if user is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password or ""
    db = sqlite_path(uri)
    if db is not None and not db.is_absolute():
        # a relative SQLite path would depend on the working folder (Hydra changes it)
        uri = sqlite_uri(db.resolve())
    return uri


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite store (mlruns/artifacts); a server chooses its own."""
    db = sqlite_path(uri)
    return (db.parent / "artifacts").resolve().as_uri() if db else None


class StoreError(RuntimeError):
    """The tracking store cannot be used; raised before any training starts."""


BUSY_ENV = "DIGITLAB_STORE_BUSY_SECONDS"

# how long a store locked by another process is waited for before giving up: MLflow's own
# SQLite busy timeout (PRAGMA busy_timeout = 20000), so the start-up check and a write in the
# middle of a run wait alike
DEFAULT_BUSY_SECONDS = 20.0


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
            raise StoreError(f"{uri_key(uri)}={uri}: the tracking server does not answer "
                             f"({exc}); start it (mlflow server) or point {uri_key(uri)} "
                             "elsewhere.") from None
        _check_login(uri)
        return
    db = sqlite_path(uri)
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
            raise StoreError(f"{uri_key(uri)}={uri}: the tracking server {told}; set "
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
    cut = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    if cut or "experiments" not in tables or not versions:
        detail = f"table {cut[0]} of an unfinished migration" if cut else "no schema version"
        raise StoreError(f"{db}: a half-made MLflow store ({detail}): its creation or upgrade was "
                         f"cut off; if it holds no runs you need, delete it (rm {db}), else "
                         f"restore it from a backup and run `mlflow db upgrade sqlite:///{db}`.")
    # a store of another schema version: MLflow refuses it when it opens it, naming both


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
    from mlflow import MlflowClient

    for leftover in db.parent.glob(f".{db.name}.*.creating"):  # of a creation cut off earlier
        leftover.unlink(missing_ok=True)
    making = db.parent / f".{db.name}.{os.getpid()}.creating"
    making_uri = sqlite_uri(making)
    try:
        MlflowClient(making_uri).search_experiments()  # the tables made and migrated
    except Exception as exc:  # a full disk: SQLAlchemy's OperationalError, MLflow's, an OSError
        making.unlink(missing_ok=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        if "full" in reason or "space" in reason or isinstance(exc, OSError):
            raise StoreError(f"{uri_key(uri)}={uri}: cannot create the store ({reason}); free "
                             "some space on that disk or choose another place for it") from None
        raise
    if db.exists():  # an empty file: replaced (a process that has it open reads no tables)
        os.replace(making, db)
        return
    try:  # a hard link never replaces a store that another program created meanwhile
        os.link(making, db)
    except FileExistsError:
        pass
    making.unlink()


def prepare_store(uri: str, experiment: str,
                  on_create: Callable[[], None] | None = None) -> str:
    """Check the store, create (or migrate) it and the experiment once, under a file lock, before
    any job starts; mark runs of dead processes KILLED. Returns the experiment id. `on_create` is
    called before a SQLite store is created (its tables take seconds)."""
    check_store(uri)
    db = sqlite_path(uri)
    if db is None:
        return _through_mlflow(uri, lambda: _prepare(uri, experiment))
    with FileLock(str(db) + ".lock", timeout=120):
        # asked again under the lock: another process may have made it meanwhile
        if _store_is_new(db):
            if on_create:
                on_create()
            _through_mlflow(uri, lambda: _create_sqlite_store(db, uri))
        return _through_mlflow(uri, lambda: _prepare(uri, experiment))


OLD_SCHEMA = "Detected out-of-date database schema"


def _through_mlflow(uri: str, write: Callable[[], T]) -> T:
    """`write()`, with MLflow's error as a StoreError that names the store."""
    from mlflow.exceptions import MlflowException

    try:
        return write()
    except MlflowException as exc:
        line = exc.message.splitlines()[0]
        if line.startswith(OLD_SCHEMA):  # MLflow's check as it opens a store, in one line
            found = line.removeprefix(OLD_SCHEMA).split(". Take a backup")[0].strip()
            line = (f"an MLflow store of another schema version {found}; back it up, then run "
                    f"`mlflow db upgrade {uri}`, or install the MLflow that wrote it")
        raise StoreError(f"{uri_key(uri)}={uri}: {line}") from None


def open_store(uri: str) -> MlflowClient:
    """The store's client, the store opened: MLflow refuses one of another schema version here
    (a StoreError)."""
    return _through_mlflow(uri, lambda: client_for(uri))


def _prepare(uri: str, experiment: str) -> str:
    from mlflow.exceptions import MlflowException

    client = client_for(uri)  # creates and migrates the schema of a SQLite store
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            experiment_id = client.create_experiment(experiment,
                                                      artifact_location=artifact_root(uri),
                                                      tags=MODEL_TRAINING)
        except MlflowException:  # created meanwhile by another process (server stores)
            experiment_id = client.get_experiment_by_name(experiment).experiment_id
    else:
        experiment_id = found.experiment_id
        if found.lifecycle_stage != "active":  # MLflow refuses runs in a deleted experiment
            raise StoreError(
                f"tracking.experiment={experiment}: the experiment is deleted in {uri} (its runs "
                f"kept until the store is cleaned); restore it (MLFLOW_TRACKING_URI={uri} "
                f"mlflow experiments restore --experiment-id {experiment_id}) or name another "
                "with tracking.experiment=<name>.")
        if not found.tags.get(EXPERIMENT_KIND):  # an experiment made before the tag was set
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_TRAINING[EXPERIMENT_KIND])
    mark_dead_runs_killed(client, experiment_id)
    return experiment_id


@dataclass(frozen=True)
class Fault:
    kind: str  # disk_full | store_locked | server_gone | store_gone
    line: str


# fragments of the messages each fault shows, from SQLite, SQLAlchemy, urllib3 and MLflow
DISK_FULL = ("database or disk is full", "No space left on device")
LOCKED = ("database is locked",)
# SQLite on a store file deleted while it was open: its connections can only read the old inode,
# and a new connection finds an empty file
FILE_GONE = ("attempt to write a readonly database", "no such table")
SERVER_GONE = ("Max retries exceeded", "Connection refused", "Failed to establish a new connection",
               "RemoteDisconnected", "Read timed out", "ConnectionError", "ConnectTimeout",
               "Connection broken", "IncompleteRead")  # the last two: killed mid-answer


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _sqlite_file_gone(store: str | None) -> bool:
    path = sqlite_path(store)
    return path is not None and (not path.exists() or path.stat().st_size == 0)


def describe(exc: BaseException, store: str | None = None) -> Fault | None:
    """The machine or store fault behind `exc`, or None when it is none of these."""
    where = f" ({store})" if store else ""
    for link in _chain(exc):
        text = str(link)
        if any(f in text for f in FILE_GONE) and _sqlite_file_gone(store):
            return Fault("store_gone", f"the store's file{where} was deleted or emptied while "
                                       "the command ran; restore it from a backup, or start "
                                       "again into a new store (tracking.uri=…)")
        if (isinstance(link, OSError) and link.errno == errno.ENOSPC) or any(
                f in text for f in DISK_FULL):
            path = getattr(link, "filename", None)
            device = f" of {path}" if path else where
            return Fault("disk_full", f"no space left on the device{device}; free some space "
                                      "and run it again")
        if any(f in text for f in LOCKED):
            return Fault("store_locked", f"the tracking store{where} was locked by another "
                                         f"process for more than {DEFAULT_BUSY_SECONDS:g} s; wait "
                                         "for it to finish (or stop it) and run it again")
        if any(f in text for f in SERVER_GONE):
            return Fault("server_gone", f"the tracking server{where} stopped answering (MLflow "
                                        f"retried each request for {SERVER_PATIENCE} s); restart "
                                        "it and run the command again: finished runs are "
                                        "skipped")
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def mark_dead_runs_killed(client: MlflowClient, experiment_id: str | None = None) -> list[str]:
    """RUNNING runs started on this host by a process that no longer exists → KILLED, with the
    epochs their journal holds written first; in one experiment, or (None) in every one."""
    from digitlab.tracking.epochs import replay

    ids = [experiment_id] if experiment_id else [e.experiment_id
                                                 for e in client.search_experiments()]
    killed = []
    running = client.search_runs(ids, filter_string="attributes.status = 'RUNNING'",
                                 max_results=5000) if ids else []
    for run in running:
        if run_is_stale(run):
            replay(client, run.info.run_id, run.data.tags.get(tag.JOURNAL_DIR))
            client.set_tag(run.info.run_id, "error",
                           f"process {run.data.tags[tag.PID]} died while the run was RUNNING (killed by a "
                           "signal, e.g. the out-of-memory killer, or its machine stopped)")
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    if killed:
        log.warning("marked %d run(s) of dead processes KILLED: %s", len(killed), killed)
    return killed


def process_tags() -> dict[str, str]:
    return {tag.HOST: socket.gethostname(), tag.PID: str(os.getpid())}


def process_alive(host: str | None, pid: str | None) -> bool:
    """Whether the process that wrote these host/pid tags may still run (another host, or no
    pid: assume so)."""
    if host != socket.gethostname() or not (pid or "").isdigit():
        return True
    return pid_alive(int(pid))


def run_is_stale(run) -> bool:
    """A run whose process, on this host, is gone."""
    return not process_alive(run.data.tags.get(tag.HOST), run.data.tags.get(tag.PID))
