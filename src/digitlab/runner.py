"""One training run from a `RunConfig`: data, split, network, the epoch loop, evaluation, the
files a run leaves behind. Tracking is handed in as a `Tracker` (digitlab.tracking implements it
for MLflow), so this module imports neither MLflow nor Hydra."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Protocol

import numpy as np
import yaml

from digitlab import reporting
from digitlab import tags as tag
from digitlab.config import NOT_TRAINED_BY, RunConfig
from digitlab.data import Dataset, Split, load_dataset, make_split
from digitlab.nn.classifier import Classifier
from digitlab.nn.init import seed_streams
from digitlab.training import EpochRecord, LoopState, output_loss_and_accuracy, train

# the tag that holds a run's identity: its config and its data's digest (config_hash)
# the metrics a run ends with (best_val_accuracy only with a validation split; docs/mlflow.md)
FINAL_METRICS = ("best_val_accuracy", "test_accuracy", "test_loss", "best_epoch", "epochs_run",
                 "train_seconds")


@dataclass(frozen=True)
class ModelBundle:
    """Everything a served model needs, as plain arrays and names (no pickles)."""

    arrays: dict[str, np.ndarray]  # W1, b1, …, scale_factor, scale_shift, classes
    spec: dict  # activation, output, loss, quirk, dtype
    example: np.ndarray  # a few raw test rows


class RunLog(Protocol):
    run_id: str | None

    def set_tags(self, tags: dict[str, str | None]) -> None: ...  # None: the tag removed
    def log_epoch(self, record: EpochRecord) -> None: ...
    def log_metrics(self, metrics: dict[str, float]) -> None: ...
    def log_datasets(self, split: Split) -> None: ...
    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None: ...
    def log_model(self, bundle: ModelBundle) -> None: ...
    def save_checkpoint(self, data: bytes) -> None: ...
    def load_checkpoint(self) -> bytes: ...


class AlreadyTrained(Exception):
    """Another process trained this identity while this one waited for it to end."""

    def __init__(self, run_id: str, metrics: dict[str, float]):
        super().__init__(run_id)
        self.run_id, self.metrics = run_id, metrics


class Tracker(Protocol):
    def run(self, name: str, params: dict[str, str], tags: dict[str, str],
            exclusive: bool = False, reopen: str | None = None) -> ContextManager[RunLog]:
        """A new run, or the run `reopen` running again; `exclusive`: none other of its identity
        (tags) may train at once, and one that FINISHED meanwhile raises AlreadyTrained."""
        ...

    def finished_run(self, config_hash: str) -> tuple[str, dict[str, float]] | None:
        """(run id, final metrics) of a FINISHED run with this identity, if any."""
        ...

    def stopped_run(self, config_hash: str) -> tuple[str, int, dict[str, float]] | None:
        """(run id, the epoch it stopped at, its metrics) of the latest run of this identity
        that was stopped before its last epoch, if any."""
        ...

    def reserved(self, config_hash: str) -> ContextManager[None]:
        """This identity trained by this process alone while the block runs."""
        ...


class _NoRunLog:
    run_id = None

    def set_tags(self, tags: dict[str, str | None]) -> None:
        pass

    def log_epoch(self, record: EpochRecord) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float]) -> None:
        pass

    def log_datasets(self, split: Split) -> None:
        pass

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        pass

    def log_model(self, bundle: ModelBundle) -> None:
        pass

    def save_checkpoint(self, data: bytes) -> None:
        pass

    def load_checkpoint(self) -> bytes:
        raise LookupError("tracking=off keeps no checkpoint")


class Progress(Protocol):
    """What a run tells its command's display as it goes; every call is cheap."""

    def step(self, what: str) -> None:
        """A step that may take seconds begins (reading the data, training, logging)."""

    def rows(self, done: int, total: int) -> None:
        """Rows done in the current pass, of `total`."""

    def epoch(self, record: EpochRecord) -> None:
        """A pass has ended and been scored."""


# a pruner's question after each epoch: stop this run here? (digitlab.cli.search)
StopWhen = Callable[[EpochRecord], bool]


class NullTracker:
    """tracking=off: the run's files stay in its output folder, nothing is logged."""

    @contextmanager
    def run(self, name: str, params: dict[str, str], tags: dict[str, str],
            exclusive: bool = False, reopen: str | None = None) -> Iterator[RunLog]:
        yield _NoRunLog()

    def finished_run(self, config_hash: str) -> None:
        return None

    def stopped_run(self, config_hash: str) -> None:
        return None

    def reserved(self, config_hash: str) -> ContextManager[None]:
        return nullcontext()


@dataclass
class RunResult:
    run_id: str | None
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None
    skipped: bool = False  # an identical run had FINISHED already (tracking.skip_finished)
    stopped_at: int | None = None  # the epoch `stop_when` stopped it at (a pruned trial)
    epochs_trained: int = 0  # by this call (a run that went on from a rung: since that rung)
    final_state: dict[str, np.ndarray] = field(default_factory=dict)
    best_state: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Trained:
    """A run's training so far: all it needs to go on where it stopped, as if it never had
    (a halving sweep's survivor; pickled into the run's checkpoint artifact)."""

    clf: Classifier
    loop: LoopState
    history: list[dict[str, float]] = field(default_factory=list)
    best_record: EpochRecord | None = None
    best_state: dict[str, np.ndarray] = field(default_factory=dict)
    initial_layers: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """{'model': {'hidden': [100]}} → {'model.hidden': '100'}: MLflow params, dotted keys."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)  # model.hidden=300,100
        else:
            flat[name] = str(value)
    return flat


def recipe(cfg: RunConfig) -> str:
    """What a run trains, as text: its resolved config without the tracking settings and the
    keys that train nothing."""
    tree = {k: v for k, v in asdict(cfg).items() if k != "tracking"}
    for name in NOT_TRAINED_BY:
        group, key = name.split(".")
        tree[group].pop(key, None)
    return json.dumps(tree, sort_keys=True, default=str)


def config_hash(cfg: RunConfig, data_digest: str) -> str:
    """Identity of a run: its recipe and the data's digest."""
    return hashlib.sha256((recipe(cfg) + data_digest).encode()).hexdigest()[:16]


def numerics(cfg: RunConfig) -> dict[str, str]:
    """What a run's bits depend on besides its config, data and code: the Python and NumPy
    versions, the BLAS library NumPy loaded (its version and the kernel it chose for this
    processor, which OPENBLAS_CORETYPE can force), the BLAS threads the run uses, the CPU
    architecture."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    mine = next((i for i in blas if "numpy" in i.get("filepath", "")), blas[0] if blas else {})
    return {tag.PYTHON: platform.python_version(), tag.NUMPY: np.__version__,
            tag.BLAS: " ".join(str(mine.get(k)) for k in ("internal_api", "version",
                                                          "architecture") if mine.get(k)),
            tag.BLAS_THREADS: str(cfg.trainer.blas_threads), tag.MACHINE: platform.machine()}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def _write_reports(folder: Path, reports: Path, cfg: RunConfig, split: Split, clf: Classifier,
                   proba: np.ndarray | None, history: list[dict[str, float]],
                   final: dict[str, np.ndarray], best: dict[str, np.ndarray],
                   initial_layers: dict[str, float]) -> None:
    """The run's files in `folder`, its reports in `reports` (digitlab.reporting)."""
    # the test set (its outputs `proba`); the training rows where a recipe keeps no test set
    if proba is not None:
        y_true, part, images = split.y_test, "Test", split.raw_test
    else:
        y_true, proba, part = split.y_train, clf.predict_proba(split.x_train), "Training"
        images = split.x_train
    title = f"{split.name}: hidden {cfg.model.hidden}, lr {cfg.optim.lr}, seed {cfg.seed}"
    reporting.write(reporting.ReportRequest(
        y_true, proba, split.classes, part, history, title, reports, images, split.image_shape,
        final["W1"], initial_layers))
    (folder / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    _save_npz(folder / "weights" / "final.npz", final)
    _save_npz(folder / "weights" / "best.npz", best)


def _model_bundle(state: dict[str, np.ndarray], split: Split, cfg: RunConfig) -> ModelBundle:
    arrays = {**state, "scale_factor": split.scaling.factor,
              "scale_shift": split.scaling.shift, "classes": split.classes}
    spec = {"activation": cfg.model.activation, "output": cfg.model.output,
            "loss": cfg.model.loss, "quirk": cfg.model.derivative_quirk,
            "dtype": cfg.trainer.dtype, "n_features": split.n_features,
            "pixel_max": split.pixel_max}
    return ModelBundle(arrays, spec, split.raw_examples)


def split_of(dataset: Dataset, cfg: RunConfig) -> Split:
    """`dataset` split and scaled as `cfg` says, with the blog network's split stream."""
    return make_split(dataset, cfg.data, seed_streams(cfg.seed).split, cfg.trainer.dtype)


def load_split(cfg: RunConfig) -> Split:
    """The dataset of `cfg`, checked, split and scaled."""
    return split_of(load_dataset(cfg.data), cfg)


def with_resolved_threads(cfg: RunConfig) -> RunConfig:
    """`cfg` with trainer.blas_threads=auto replaced by the thread count it means here, so the
    logged config names what the run used: BLAS sums in another order on another number of
    threads, and a rerun from the logged config must get the same bits."""
    from threadpoolctl import threadpool_info

    if cfg.trainer.blas_threads != "auto":
        return cfg
    available = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    threads = cfg.trainer.loop_threads() or min(available, default=1)
    return replace(cfg, trainer=replace(cfg.trainer, blas_threads=threads))


def run(cfg: RunConfig, tracker: Tracker, name: str, tags: dict[str, str] | None = None,
        out_dir: Path | None = None, extra_artifacts: dict[str, Path] | None = None,
        progress: Progress | None = None, dataset: Dataset | None = None,
        stop_when: StopWhen | None = None, until: int | None = None) -> RunResult:
    """Train one network as `cfg` says and log it; data that cannot be read or split raises
    DataError before a run exists; tracking.skip_finished skips a config that FINISHED.
    `dataset`: cfg.data already read by the caller; `stop_when(record)`: True ends training
    after that epoch (a pruner's decision), and the run is evaluated and recorded as it is.
    `until`: train to that epoch only (a halving sweep's rung), on from this identity's run
    stopped earlier if there is one; a run that got as far already is skipped."""
    cfg = with_resolved_threads(cfg)
    if dataset is None:
        if progress:
            progress.step(f"reading {cfg.data.name}")
        dataset = load_dataset(cfg.data)  # the identity needs the data's digest only
    identity = config_hash(cfg, dataset.digest)
    if until is not None:
        stop_when = _stopping_at(until, stop_when)
    with tracker.reserved(identity):  # another process training this config is waited for
        stopped = tracker.stopped_run(identity) if until is not None else None
        if cfg.tracking.skip_finished:
            found = tracker.finished_run(identity)
            if found:  # a run found FINISHED is not split
                return RunResult(found[0], found[1], skipped=True)
            if stopped and stopped[1] >= until:  # this rung's epochs are trained already
                return RunResult(stopped[0], stopped[2], skipped=True, stopped_at=stopped[1])
        split = split_of(dataset, cfg)
        reopen = stopped[0] if stopped else None
        # a run going on keeps its stopped identity until it stops again or ends: cut off, it
        # goes on from the same checkpoint
        run_tags = {**(tags or {}), **({} if reopen else {tag.IDENTITY: identity})}
        try:
            with tracker.run(name, flatten(asdict(cfg)), run_tags,
                             exclusive=cfg.tracking.skip_finished, reopen=reopen) as log:
                trained = pickle.loads(log.load_checkpoint()) if reopen else None
                result = _train_and_log(cfg, split, log, progress, out_dir, extra_artifacts,
                                        stop_when, trained, checkpoint=until is not None)
                if result.stopped_at:  # its numbers are at fewer epochs: another identity
                    log.set_tags({tag.PRUNED: "true", tag.PRUNED_EPOCH: str(result.stopped_at),
                                  tag.IDENTITY: f"{identity} pruned at {result.stopped_at}"})
                elif reopen:  # went on to its last epoch: the config's run after all
                    log.set_tags({tag.PRUNED: "false", tag.PRUNED_EPOCH: None,
                                  tag.IDENTITY: identity})
                return result
        except AlreadyTrained as done:
            return RunResult(done.run_id, done.metrics, skipped=True)


def _stopping_at(until: int, stop_when: StopWhen | None) -> StopWhen:
    return lambda record: record.epoch >= until or bool(stop_when and stop_when(record))


def _train_and_log(cfg: RunConfig, split: Split, log: RunLog, progress: Progress | None,
                   out_dir: Path | None, extra_artifacts: dict[str, Path] | None,
                   stop_when: StopWhen | None, trained: Trained | None,
                   checkpoint: bool) -> RunResult:
    """The run trained (on from `trained`, when given), evaluated and recorded into `log`;
    stopped before its last epoch, with its training state when `checkpoint`."""
    if trained is None:
        log.set_tags({tag.DATA_DIGEST: split.digest, **numerics(cfg)})
        log.log_datasets(split)
        trained = Trained(Classifier(cfg.model, cfg.optim, cfg.trainer, cfg.seed),
                          LoopState.new(cfg.trainer))
    clf = trained.clf
    if progress:
        progress.step(f"training on {len(split.y_train)} rows, {cfg.trainer.epochs} "
                      f"epoch(s) at most")
        clf.on_rows = progress.rows
    epochs_before = len(trained.history)
    stopped_at = _train_epochs(trained, split, log, progress, stop_when)
    clf.on_rows = None  # a progress display is no part of the training state
    if stopped_at and checkpoint:  # to go on from here if it survives its rung
        log.save_checkpoint(pickle.dumps(trained))
    if progress:
        progress.step("evaluating and recording the run")
    proba = clf.predict_proba(split.x_test) if len(split.y_test) else None
    test_loss, test_accuracy = (output_loss_and_accuracy(clf, proba, split.y_test)
                                if proba is not None else (math.nan, math.nan))
    best_record = trained.best_record
    metrics = {"test_loss": test_loss, "test_accuracy": test_accuracy,
               "best_epoch": float(best_record.epoch), "train_seconds": trained.seconds,
               "epochs_run": float(len(trained.history)),
               "best_val_accuracy": (math.nan if best_record.val_accuracy is None
                                     else best_record.val_accuracy)}
    metrics = {k: v for k, v in metrics.items() if not math.isnan(v)}
    with _artifact_folders(out_dir, keep=log.run_id is None) as (folder, reports):
        final_state = clf.network.state()
        _write_reports(folder, reports, cfg, split, clf, proba, trained.history, final_state,
                       trained.best_state, trained.initial_layers)
        for target, source in (extra_artifacts or {}).items():
            _copy_tree(source, folder / target)
        # the metrics after the model (the tracker links them to it)
        log.log_artifacts(folder)
        if cfg.tracking.log_model:
            log.log_model(_model_bundle(final_state, split, cfg))
        log.log_metrics(metrics)
        log.log_artifacts(reports, "report")
    return RunResult(log.run_id, metrics, trained.history, out_dir, final_state=final_state,
                     best_state=trained.best_state, stopped_at=stopped_at,
                     epochs_trained=len(trained.history) - epochs_before)


def _train_epochs(trained: Trained, split: Split, log: RunLog, progress: Progress | None,
                  stop_when: StopWhen | None) -> int | None:
    """The epochs trained and each logged, `trained` kept up to date; the epoch `stop_when`
    stopped it at, or None."""
    clf, start = trained.clf, time.perf_counter()
    try:
        for record in train(clf, split, trained.loop):
            log.log_epoch(record)
            trained.history.append(record.metrics())
            trained.initial_layers = trained.initial_layers or record.layers_before
            if record.improved:
                trained.best_record, trained.best_state = record, clf.network.state()
            if progress:
                progress.epoch(record)
            if stop_when and record.epoch < clf.trainer.epochs and stop_when(record):
                return record.epoch
        return None
    finally:
        trained.seconds += time.perf_counter() - start


@contextmanager
def _artifact_folders(out_dir: Path | None, keep: bool) -> Iterator[tuple[Path, Path]]:
    """Where the run's files and its reports go: the run's output folder (reports in its report/)
    when nothing is tracked; else two temporary ones, the reports apart because they are logged
    once made (MLflow keeps both)."""
    if keep and out_dir is not None:
        (out_dir / "report").mkdir(parents=True, exist_ok=True)
        yield out_dir, out_dir / "report"
        return
    with tempfile.TemporaryDirectory(prefix="digitlab-") as tmp:
        (Path(tmp) / "run").mkdir()
        (Path(tmp) / "reports").mkdir()
        yield Path(tmp) / "run", Path(tmp) / "reports"


def _copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
