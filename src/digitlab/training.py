"""Each pass of the classifier's epoch loop (`Classifier.passes`) scored into one record: losses
and accuracies, early stopping, divergence. It knows nothing of MLflow or Hydra; the caller logs
the records it yields."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import numpy as np

from digitlab.config import ConfigError
from digitlab.data.split import Split
from digitlab.nn import LoopSettings
from digitlab.nn.classifier import Classifier
from digitlab.nn.init import seed_streams
from digitlab.nn.network import probe_rows


class TrainingDiverged(RuntimeError):
    """The training cost became NaN or infinite; the run cannot recover."""

    def __init__(self, epoch: int, loss: float):
        self.epoch, self.loss = epoch, loss
        super().__init__(f"training diverged: train_loss={loss} at epoch {epoch}; "
                         "lower optim.lr or use a bounded activation (sigmoid, tanh)")


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float | None  # None without a validation set
    val_accuracy: float | None
    lr: float
    seconds: float  # the training pass only, without scoring
    improved: bool  # best so far by validation accuracy (training accuracy without validation)
    test_loss: float | None = None  # only with trainer.eval_test
    test_accuracy: float | None = None
    # trainer.diagnostics: layer<l>.<quantity> after this epoch, and (first epoch only) before
    # training, the run's step 0 (digitlab.nn.network)
    layers: dict = field(default_factory=dict)
    layers_before: dict = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The per-epoch metric names of the MLflow contract (docs/mlflow.md);
        per-epoch test scores are epoch_test_* so they never mix with the final test_* of the
        run."""
        values = asdict(self)
        values["epoch_seconds"] = values.pop("seconds")
        values["epoch_test_loss"] = values.pop("test_loss")
        values["epoch_test_accuracy"] = values.pop("test_accuracy")
        layers = values.pop("layers")
        del values["epoch"], values["improved"], values["layers_before"]
        return {k: float(v) for k, v in {**values, **layers}.items() if v is not None}


def loss_and_accuracy(clf: Classifier, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cost (without the L2 term) and accuracy of the classifier on (x, y)."""
    if len(y) == 0:
        return math.nan, math.nan
    return output_loss_and_accuracy(clf, clf.predict_proba(x), y)


def output_loss_and_accuracy(clf: Classifier, output: np.ndarray,
                             y: np.ndarray) -> tuple[float, float]:
    """The same from output activations already computed."""
    cost = float(np.mean(clf.network.cost(output, clf.targets(y))))
    return cost, float(np.mean(clf.classes_[output.argmax(axis=1)] == y))


class EarlyStop:
    """scikit-learn's rule: stop after more than `patience` epochs without a `tol` improvement."""

    def __init__(self, monitor: str, patience: int, tol: float):
        self.monitor, self.patience, self.tol = monitor, patience, tol
        self.best, self.stale = math.inf, 0

    def should_stop(self, record: EpochRecord) -> bool:
        if self.monitor == "none":
            return False
        # lower is better for both: the loss, and the negated accuracy
        value = record.train_loss if self.monitor == "train_loss" else -record.val_accuracy
        self.stale = self.stale + 1 if value > self.best - self.tol else 0
        self.best = min(self.best, value)
        return self.stale > self.patience


def _diagnostics(clf: Classifier, split: Split) -> Callable[[], dict[str, float]]:
    """The per-layer diagnostics on the split's probe rows, chosen by the run's seed."""
    rows = probe_rows(len(split.y_train), seed_streams(clf.seed).probe)
    x, y = split.x_train[rows], split.y_train[rows]
    return lambda: clf.layer_diagnostics(x, y)


@dataclass
class LoopState:
    """Where the epoch loop stands: with the classifier, all it needs to go on where it stopped
    (a halving sweep's survivor continues from it, as if it had never stopped)."""

    best: float  # the best score so far (validation accuracy, or training accuracy without)
    stop: EarlyStop

    @classmethod
    def new(cls, cfg: LoopSettings) -> LoopState:
        return cls(-math.inf, EarlyStop(cfg.early_stopping, cfg.patience, cfg.tol))


def train(clf: Classifier, split: Split, loop: LoopState | None = None) -> Iterator[EpochRecord]:
    """Run passes over the training rows until `clf.trainer.epochs` are done, yielding a record
    after each: from fresh weights, or, for a classifier that has trained, on from where it and
    `loop` (updated as the loop goes) stopped."""
    cfg = clf.trainer
    if cfg.early_stopping == "val_accuracy" and not split.has_val:
        raise ConfigError("trainer.early_stopping='val_accuracy' needs a validation set, but "
                          "data.val_mode='none'; set data.val_mode=stratified or monitor train_loss.")
    diagnose = _diagnostics(clf, split) if cfg.diagnostics == "layers" else dict
    loop, before = loop or LoopState.new(cfg), {}
    if clf.network is None:
        clf.start(split.x_train, split.y_train, split.classes)
        before = diagnose()  # the fresh weights: the run's step 0
    for epoch, seconds in enumerate(clf.epochs(split.x_train, split.y_train, split.classes),
                                    start=clf.epochs_done + 1):
        if cfg.train_metrics == "full":  # Nielsen's curves score the whole set after the pass
            train_loss, train_accuracy = loss_and_accuracy(clf, split.x_train, split.y_train)
            train_loss += clf.penalty(len(split.y_train))
        else:
            train_loss, train_accuracy = clf.pass_loss_, clf.pass_accuracy_
        if not math.isfinite(train_loss):
            raise TrainingDiverged(epoch, train_loss)
        val_loss, val_accuracy = loss_and_accuracy(clf, split.x_val, split.y_val)
        score = val_accuracy if split.has_val else train_accuracy
        test = (loss_and_accuracy(clf, split.x_test, split.y_test)
                if cfg.eval_test and len(split.y_test) else (None, None))
        record = EpochRecord(epoch, train_loss, train_accuracy,
                             val_loss if split.has_val else None,
                             val_accuracy if split.has_val else None,
                             clf.optimizer.lr, seconds, improved=score > loop.best,
                             test_loss=test[0], test_accuracy=test[1], layers=diagnose(),
                             layers_before=before if epoch == 1 else {})
        loop.best = max(loop.best, score)
        stop = loop.stop.should_stop(record)  # before the yield: a caller may stop here
        yield record
        if stop:
            return
