"""A run's life in MLflow: parent runs, the run log the runner writes into, and its end."""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunTag,
)
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature, infer_signature
from mlflow.tracking import MlflowClient

from digitlab import tags as tag
from digitlab.data import Split
from digitlab.files import sqlite_path
from digitlab.runner import AlreadyTrained, ModelBundle
from digitlab.stopping import Terminated, deferred
from digitlab.tracking.epochs import EpochMetrics, journal_folder
from digitlab.tracking.model import MODEL_CODE, NetworkModel
from digitlab.tracking.store import client_for, describe, mark_dead_runs_killed, process_tags
from digitlab.training import EpochRecord

log = logging.getLogger(__name__)


@deferred()  # every write to the store: a stop signal waits for it (see digitlab.stopping)
def start_parent_run(uri: str, experiment_id: str, name: str, tags: dict[str, str]) -> str:
    run = client_for(uri).create_run(experiment_id, run_name=name,
                                       tags={**tags, **process_tags()})
    return run.info.run_id


@deferred()
def resume_parent_run(uri: str, experiment_id: str, match: dict[str, str], name: str,
                      tags: dict[str, str]) -> tuple[str, bool]:
    """The parent run with every tag of `match` (reopened as RUNNING by this process), or a new
    one: (run id, whether it was resumed). A search interrupted and started again keeps one
    parent."""
    client = client_for(uri)
    where = " and ".join(f"tags.`{key}` = '{value}'" for key, value in match.items())
    found = client.search_runs([experiment_id], where, order_by=["attributes.start_time ASC"],
                               max_results=1)
    if not found:
        return start_parent_run(uri, experiment_id, name, {**tags, **match}), False
    run_id = found[0].info.run_id
    client.update_run(run_id, status="RUNNING")
    for key, value in {**tags, **process_tags()}.items():
        client.set_tag(run_id, key, value)
    return run_id, True


@deferred()
def end_run(uri: str, run_id: str, status: str) -> None:
    client_for(uri).set_terminated(run_id, status)


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
def _end_run(client: MlflowClient, run_id: str, status: str, error: BaseException | None) -> None:
    try:
        client.set_terminated(run_id, status)
    except Exception as end_error:
        if error is None:
            raise
        # the next prepare_store marks it KILLED once this process is gone
        log.warning("could not mark run %s %s: %s", run_id, status, end_error)


@deferred()
def _write_epochs_of_ended(run_log: MlflowRunLog) -> None:
    """A failed or stopped run's epochs not yet in the store; if they cannot be written either,
    they stay in its journal."""
    try:
        run_log.epochs.write()
    except Exception as write_error:  # the run's own error is the one to raise
        log.warning("could not write run %s's last epochs: %s", run_log.run_id, write_error)


def _remove_local_artifacts(client: MlflowClient, run_id: str) -> None:
    """A run's artifacts in a local store removed, its logged model's too (MLflow keeps those
    apart, under the experiment's models/): what a full disk let it write is partial."""
    import shutil
    from urllib.parse import unquote, urlparse

    try:
        run = client.get_run(run_id)
        models = client.search_logged_models([run.info.experiment_id],
                                             filter_string=f"source_run_id = '{run_id}'")
    except Exception as exc:
        log.warning("could not find run %s's artifacts to remove: %s", run_id, exc)
        return
    for uri in [run.info.artifact_uri, *(m.artifact_location for m in models)]:
        location = urlparse(uri)
        if location.scheme == "file":
            shutil.rmtree(unquote(location.path), ignore_errors=True)
            log.warning("removed run %s's partial artifacts in %s", run_id, unquote(location.path))


# a halving sweep's run stopped at a rung: its training state (runner.Trained), to go on from
CHECKPOINT = "training_state.pkl"


class MlflowRunLog:
    """Logs one run; its per-epoch records in batches (digitlab.tracking.epochs)."""

    def __init__(self, client: MlflowClient, run_id: str, experiment_id: str,
                 params: dict[str, str], reopened: bool = False):
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id
        self.reopened = reopened  # a rung's run going on: its earlier model is replaced
        self.params = params  # the logged model carries its run's params, as log_model's do
        self.epochs = EpochMetrics(client, run_id)
        self.model_id: str | None = None  # the logged model, once there is one

    @deferred()
    def save_checkpoint(self, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="digitlab-checkpoint-") as tmp:
            (Path(tmp) / CHECKPOINT).write_bytes(data)
            self.client.log_artifact(self.run_id, str(Path(tmp) / CHECKPOINT), "checkpoint")

    def load_checkpoint(self) -> bytes:
        with tempfile.TemporaryDirectory(prefix="digitlab-checkpoint-") as tmp:
            path = self.client.download_artifacts(self.run_id, f"checkpoint/{CHECKPOINT}", tmp)
            return Path(path).read_bytes()

    @deferred()
    def set_tags(self, tags: dict[str, str | None]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()
                                                 if v is not None])
        for key in (k for k, v in tags.items() if v is None):
            self.client.delete_tag(self.run_id, key)

    @deferred()
    def log_epoch(self, record: EpochRecord) -> None:
        now = int(time.time() * 1000)
        before = [Metric(key, float(value), now, 0)  # the per-layer values before training
                  for key, value in record.layers_before.items()]
        self.epochs.add(before + [Metric(key, value, now, record.epoch)
                                  for key, value in record.metrics().items()])

    @deferred()
    def log_metrics(self, metrics: dict[str, float]) -> None:
        """The run's final metrics (step 0), written with the epochs not yet in the store; after
        log_model, linked to the model, as log_model links the step-0 metrics it finds."""
        now = int(time.time() * 1000)
        self.epochs.write([Metric(k, float(v), now, 0, model_id=self.model_id)
                           for k, v in metrics.items()])

    @deferred()
    def write_epochs(self) -> None:
        self.epochs.write()

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
                fields = dataset.to_dict()
                entity = Dataset(fields["name"], fields["digest"], fields["source_type"],
                                 fields["source"], fields.get("schema"), fields.get("profile"))
                inputs.append(DatasetInput(entity, [InputTag("mlflow.data.context", context)]))
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
    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    @deferred()
    def log_model(self, bundle: ModelBundle) -> None:
        """The pyfunc model as a LoggedModel of the run, through the client: created, its files
        saved by mlflow.pyfunc.save_model and uploaded, then READY (FAILED if any step fails)."""
        # raw pixels, matched by position (no names): numpy rows and a CSV with any pixel header,
        # integers or floats. No input schema: MLflow's would refuse floats for long columns and
        # int64 for double ones; NetworkModel.predict checks the width and the range instead
        example = bundle.example.astype(np.int64)
        model = NetworkModel()
        model.load_arrays(bundle.arrays, bundle.spec)
        signature = ModelSignature(
            inputs=None, outputs=infer_signature(example, model.predict(None, example)).outputs)
        for earlier in self.client.search_logged_models(
                [self.experiment_id], filter_string=f"source_run_id = '{self.run_id}'"
        ) if self.reopened else []:
            self.client.delete_logged_model(earlier.model_id)
        logged = self.client.create_logged_model(self.experiment_id, name="model",
                                                 source_run_id=self.run_id, params=self.params)
        try:
            self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, step=0)])
            with tempfile.TemporaryDirectory(prefix="digitlab-model-") as tmp:
                arrays, spec = Path(tmp) / "network.npz", Path(tmp) / "network.json"
                np.savez(arrays, **bundle.arrays)
                spec.write_text(json.dumps(bundle.spec))
                code = Path(tmp) / "digitlab_model.py"  # models from code: nothing is pickled
                code.write_text(MODEL_CODE)
                saved = Path(tmp) / "model"
                mlflow.pyfunc.save_model(
                    saved, python_model=str(code),
                    artifacts={"arrays": str(arrays), "spec": str(spec)},
                    signature=signature, input_example=example,
                    mlflow_model=Model(artifact_path=logged.artifact_location,
                                       model_uuid=logged.model_id, run_id=self.run_id,
                                       model_id=logged.model_id),
                    # explicit requirements: inferring them would import-trace in a subprocess
                    pip_requirements=[f"numpy=={np.__version__}",
                                      f"mlflow=={mlflow.__version__}", "digitlab"])
                self.client.log_model_artifacts(logged.model_id, str(saved))
        except BaseException:
            self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            raise
        self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        self.model_id = logged.model_id


def _created(client: MlflowClient, experiment_id: str, name: str, params: dict[str, str],
             tags: dict[str, str]) -> str:
    """A new run and its params; called where a stop signal is deferred (stopping.deferred),
    so that the caller holds the run's id before the signal is raised."""
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), 100):  # log_batch takes at most 100 params
        client.log_batch(run_id, params=items[i:i + 100])
    return run_id


def _rival(client: MlflowClient, experiment_id: str, identity: str, own: str):
    """A run of the same identity, RUNNING or FINISHED, other than `own` (FINISHED first)."""
    found = client.search_runs([experiment_id], f"tags.`{tag.IDENTITY}` = '{identity}'")
    others = sorted((r for r in found if r.info.run_id != own
                     and r.info.status in ("RUNNING", "FINISHED")),
                    key=lambda r: r.info.status != "FINISHED")
    return others[0] if others else None


def _ended(client: MlflowClient, experiment_id: str, rival):
    """`rival` once it is no longer RUNNING (or was deleted); runs of dead processes on this
    host are marked KILLED meanwhile."""
    log.info("waiting for run %s (host %s, pid %s), which trains this config",
             rival.info.run_id, rival.data.tags.get(tag.HOST), rival.data.tags.get(tag.PID))
    while rival.info.status == "RUNNING" and rival.info.lifecycle_stage == "active":
        time.sleep(CLAIM_POLL_SECONDS)
        mark_dead_runs_killed(client, experiment_id)
        rival = client.get_run(rival.info.run_id)
    return rival


# how often a run waiting for another of its config asks whether that one has ended
CLAIM_POLL_SECONDS = 2.0


def _claimed(client: MlflowClient, experiment_id: str, name: str, params: dict[str, str],
             tags: dict[str, str]) -> str:
    """A new run that alone trains its identity, in a store other processes may write from
    other machines (no lock file reaches them). The run is created first, then every other
    RUNNING or FINISHED run of its identity is looked for: finding one, it ends KILLED and is
    deleted, and the other is waited for; FINISHED, it is the config's run (AlreadyTrained);
    ended otherwise, the claim starts again after a random pause. Of two processes, the one
    that looks second always sees the other's run, so at most one trains."""
    while True:
        run_id = None
        try:
            with deferred():  # a stop signal is raised once the claim's run is kept or gone
                run_id = _created(client, experiment_id, name, params, tags)
                rival = _rival(client, experiment_id, tags[tag.IDENTITY], run_id)
                if rival is not None:  # another process trains this config: give way
                    client.set_terminated(run_id, "KILLED")
                    client.delete_run(run_id)
                    run_id = None
        except BaseException:
            if run_id:  # stopped as its claim was kept: the run never trained
                client.set_terminated(run_id, "KILLED")
            raise
        if rival is None:
            return run_id
        rival = _ended(client, experiment_id, rival)
        if rival.info.status == "FINISHED" and rival.info.lifecycle_stage == "active":
            raise AlreadyTrained(rival.info.run_id, rival.data.metrics)
        time.sleep(random.uniform(0.1, CLAIM_POLL_SECONDS))  # two yielding claims part ways


@contextmanager
def open_run(uri: str, experiment_id: str, parent_run_id: str | None, name: str,
             params: dict[str, str], tags: dict[str, str], exclusive: bool = False,
             reopen: str | None = None) -> Iterator[MlflowRunLog]:
    """A new run, its params logged, or the run `reopen` RUNNING again with these tags; it ends
    FINISHED, or FAILED / KILLED with the error. `exclusive` in a store without a lock file (a
    tracking server, a database): `_claimed`."""
    client = client_for(uri)
    tags = {**tags, **process_tags(), tag.JOURNAL_DIR: str(journal_folder().resolve())}
    if parent_run_id:
        tags[tag.PARENT] = parent_run_id
    run_id, run_log, error, gone = None, None, None, False
    params = {k: v[:6000] for k, v in params.items()}
    try:
        if reopen:
            with deferred():
                client.update_run(reopen, status="RUNNING")
                run_id = reopen
                client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
                if "error" in client.get_run(run_id).data.tags:  # of a go-on cut off earlier
                    client.delete_tag(run_id, "error")
        elif exclusive and sqlite_path(uri) is None:
            run_id = _claimed(client, experiment_id, name, params, tags)
        else:
            with deferred():  # a stop signal arriving here is raised once the run exists
                run_id = _created(client, experiment_id, name, params, tags)
        run_log = MlflowRunLog(client, run_id, experiment_id, params, bool(reopen))
        yield run_log
        run_log.write_epochs()
    except BaseException as exc:
        error, fault = exc, describe(exc)
        # a server that stopped answering would make each write below wait as long again: the
        # run stays RUNNING with its journal, and the next command marks it KILLED
        gone = fault is not None and fault.kind == "server_gone"
        if run_log and not gone:
            _write_epochs_of_ended(run_log)
        if run_id and not gone:
            if fault and fault.kind == "disk_full":  # frees the space to record FAILED
                _remove_local_artifacts(client, run_id)
            _record_error(client, run_id, exc)
        raise
    finally:
        if run_log:  # before the end: a run killed in between is reaped with its journal
            run_log.epochs.close()
        if run_id and not gone:
            _end_run(client, run_id, _status_of(error), error)


class MlflowTracker:
    """Runs in one experiment of one store, as children of `parent_run_id` when given."""

    def __init__(self, uri: str, experiment_id: str, parent_run_id: str | None = None):
        self.uri, self.experiment_id, self.parent_run_id = uri, experiment_id, parent_run_id

    def finished_run(self, config_hash: str) -> tuple[str, dict[str, float]] | None:
        found = client_for(self.uri).search_runs(
            [self.experiment_id], f"tags.`{tag.IDENTITY}` = '{config_hash}' "
                                  "and attributes.status = 'FINISHED'", max_results=1)
        return (found[0].info.run_id, found[0].data.metrics) if found else None

    def stopped_run(self, config_hash: str) -> tuple[str, int, dict[str, float]] | None:
        """Also one KILLED or FAILED as it went on from the rung it had stopped at: its
        checkpoint is still that rung's."""
        found = client_for(self.uri).search_runs(
            [self.experiment_id], f"tags.`{tag.IDENTITY}` LIKE '{config_hash} pruned at %' "
                                  "and attributes.status != 'RUNNING'",
            order_by=["attributes.start_time DESC"], max_results=1)
        if not found:
            return None
        run = found[0]
        return run.info.run_id, int(run.data.tags[tag.PRUNED_EPOCH]), run.data.metrics

    def run(self, name: str, params: dict[str, str], tags: dict[str, str],
            exclusive: bool = False, reopen: str | None = None) -> AbstractContextManager:
        return open_run(self.uri, self.experiment_id, self.parent_run_id, name, params, tags,
                        exclusive, reopen)

    @contextmanager
    def reserved(self, config_hash: str) -> Iterator[None]:
        """In a SQLite store, one process at a time trains a config: two sweeps started together
        train it once, the second waiting for the first and finding its run FINISHED. A lock
        file per identity beside the store, released by the system when its process dies; in a
        store other machines write to, an exclusive `run` claims the identity instead."""
        from filelock import FileLock, Timeout

        db = sqlite_path(self.uri)
        if db is None:
            yield
            return
        lock = FileLock(str(db.parent / ".digitlab-locks" / f"{config_hash}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another process that trains this config (%s)", config_hash)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()
