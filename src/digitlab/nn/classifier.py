"""The network as a classifier in scikit-learn's vocabulary: fit, partial_fit, predict_proba,
predict, score. One `partial_fit` call is one pass over the data in the configured order, by the
reference path or a fast one; `passes` is the one epoch loop (fit and digitlab.training)."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np
from threadpoolctl import ThreadpoolController

from digitlab.nn import LoopSettings, NetworkSettings, OptimizerSettings
from digitlab.nn.init import ORDERS, seed_streams
from digitlab.nn.network import Network, layer_diagnostics
from digitlab.nn.optimizers import SCHEDULES, make_optimizer, sgd_step, weight_decay


def network_for(cfg: NetworkSettings, n_in: int, n_out: int, rng: np.random.Generator,
                dtype: str) -> Network:
    """A freshly initialised network of the architecture `cfg` describes."""
    return Network.initialise([n_in, *cfg.hidden, n_out], rng, init=cfg.init,
                              init_scale=cfg.init_scale, zero_output=cfg.output_init == "zero",
                              bias=cfg.bias, dtype=dtype, activation=cfg.activation,
                              output=cfg.output, loss=cfg.loss, quirk=cfg.derivative_quirk)


# a pass reports its progress about this many times (trainer's progress bar, long epochs)
REPORTS_PER_PASS = 100


class Classifier:
    # called with (rows done, rows in the pass) during a pass, when set: a progress display
    on_rows: Callable[[int, int], None] | None = None

    def __init__(self, model: NetworkSettings | None = None,
                 optim: OptimizerSettings | None = None, trainer: LoopSettings | None = None,
                 seed: int = 0):
        self.model = model or NetworkSettings()
        self.optim = optim or OptimizerSettings()
        self.trainer = trainer or LoopSettings()
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        streams = seed_streams(self.seed)
        self._init_rng, self._order_rng = streams.init, streams.order
        self.network: Network | None = None
        self.classes_: np.ndarray | None = None
        self.epochs_done = 0
        self.pass_loss_ = float("nan")  # running cost and accuracy of the last pass
        self.pass_accuracy_ = float("nan")
        self._diagnosed_weights: list[np.ndarray] | None = None  # at the last layer_diagnostics

    @property
    def dtype(self) -> str:
        return self.trainer.dtype

    def _setup(self, n_features: int, classes: np.ndarray) -> None:
        self.classes_ = np.asarray(classes)
        self.network = network_for(self.model, n_features, len(self.classes_), self._init_rng,
                                   self.dtype)
        self.optimizer = make_optimizer(self.optim, self.network.params)
        # the loaded BLAS libraries, found once per network rather than on every pass (≈ 0.5 ms)
        self._blas = ThreadpoolController()
        # plain SGD may take the fast paths; trainer.engine=reference keeps the textbook one
        self._fast = (self.optim.name == "sgd" and self.optim.momentum == 0
                      and self.trainer.engine != "reference")

    def targets(self, y: np.ndarray) -> np.ndarray:
        """One-hot rows at target_low / target_high (soft targets for Rashid's 0.01 / 0.99)."""
        index = self._class_index(y)
        out = np.full((len(y), len(self.classes_)), self.model.target_low, dtype=self.dtype)
        out[np.arange(len(y)), index] = self.model.target_high
        return out

    def _class_index(self, y: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[index], y):
            unknown = sorted(set(np.asarray(y).tolist()) - set(self.classes_.tolist()))
            raise ValueError(f"labels {unknown[:5]} are not among the classes "
                             f"{self.classes_.tolist()} given at the first partial_fit")
        return index

    def partial_fit(self, x: np.ndarray, y: np.ndarray,
                    classes: np.ndarray | None = None) -> Classifier:
        """One pass over (x, y) in the configured order, one update per mini-batch."""
        if self.network is None:
            self._setup(np.shape(x)[1], np.unique(y) if classes is None else classes)
        elif getattr(self, "_blas", None) is None:  # unpickled
            self._blas = ThreadpoolController()
        with self._blas.limit(limits=self.trainer.loop_threads(), user_api="blas"):
            return self._one_pass(x, y)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_blas"}  # ctypes handles

    def _one_pass(self, x: np.ndarray, y: np.ndarray) -> Classifier:
        x = np.asarray(x, dtype=self.dtype)
        y = np.asarray(y)
        targets = self.targets(y)
        labels = self._class_index(y)
        n, size = len(x), self.trainer.batch_size
        order = ORDERS[self.trainer.order](n, self._order_rng)
        self.optimizer.lr = SCHEDULES[self.optim.schedule](self.optim, self.epochs_done)
        network, params = self.network, self.network.params
        weights = network.weights
        rows_per_report = -(-n // REPORTS_PER_PASS)  # ⌈n / 100⌉
        if self.trainer.engine == "auto" and size == 1 and self._fast:
            from digitlab.nn import per_sample  # Numba's import (≈ 0.4 s) only where it runs

            shrink = 1.0 - self.optimizer.lr * weight_decay(self.optim, n, 1)
            compiled = per_sample.one_pass(
                network, x, np.arange(n) if order is None else order, targets, labels,
                self.optimizer.lr, shrink, self.on_rows, rows_per_report)
            if compiled is not None:
                return self._end_pass(n, *compiled)
        # each row's output as the update it took part in saw it, scored once the pass is over
        outputs = np.empty((n, weights[-1].shape[1]), dtype=self.dtype)
        report_at = every = max(size, rows_per_report)
        for start in range(0, n, size):
            rows = slice(start, start + size) if order is None else order[start:start + size]
            xb, yb = x[rows], targets[rows]
            decay = weight_decay(self.optim, n, len(xb))
            if self._fast:
                output = sgd_step(network, xb, yb, self.optimizer.lr, decay)
            else:  # the reference path: BP1–BP4, the L2 term, the optimizer's update
                grads, activations = network.backprop(xb, yb)
                if decay:
                    for g, w in zip(grads, weights):  # weights come first in `params` order
                        g += decay * w
                self.optimizer.update(params, grads)
                output = activations[-1]
            outputs[start:start + size] = output
            if self.on_rows is not None and start + size >= min(report_at, n):
                self.on_rows(min(start + size, n), n)
                report_at = start + size + every
        visited = slice(None) if order is None else order
        total_cost = float(network.cost(outputs, targets[visited]).sum(dtype=np.float64))
        correct = int(np.count_nonzero(outputs.argmax(axis=1) == labels[visited]))
        return self._end_pass(n, total_cost, correct)

    def _end_pass(self, n: int, total_cost: float, correct: int) -> Classifier:
        self.epochs_done += 1
        self.pass_loss_ = total_cost / n + self.penalty(n)
        self.pass_accuracy_ = correct / n
        return self

    def penalty(self, n_train: int) -> float:
        """½·c·Σ‖W‖², the L2 term of the training cost (Nielsen's total_cost)."""
        decay = weight_decay(self.optim, n_train, self.trainer.batch_size)
        if not decay:
            return 0.0
        return 0.5 * decay * sum(float(np.sum(w.astype(np.float64) ** 2))
                                 for w in self.network.weights)

    def start(self, x: np.ndarray, y: np.ndarray, classes: np.ndarray | None = None) -> None:
        """Fresh weights for rows like `x` and labels `y` (or `classes`), before any pass."""
        self._reset()
        self._setup(np.shape(x)[1], np.unique(y) if classes is None else classes)

    def passes(self, x: np.ndarray, y: np.ndarray,
               classes: np.ndarray | None = None) -> Iterator[float]:
        """The epoch loop: fresh weights, then up to `trainer.epochs` partial_fit passes,
        yielding the seconds of each; the caller scores, logs or stops between them."""
        self.start(x, y, classes)
        yield from self.epochs(x, y, classes)

    def epochs(self, x: np.ndarray, y: np.ndarray,
               classes: np.ndarray | None = None) -> Iterator[float]:
        """partial_fit passes from the current weights (after `start`, or from where an earlier
        loop stopped) until `trainer.epochs` are done, yielding the seconds of each."""
        while self.epochs_done < self.trainer.epochs:
            start = time.perf_counter()
            self.partial_fit(x, y, classes)
            yield time.perf_counter() - start

    def fit(self, x: np.ndarray, y: np.ndarray) -> Classifier:
        """Fresh weights, then `trainer.epochs` passes; equal to that many partial_fit calls."""
        for _ in self.passes(x, y):
            pass
        return self

    def layer_diagnostics(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Per-layer backprop quantities on the rows (x, y), `layer<l>.<quantity>`
        (digitlab.nn.network); update_ratio against the weights of the previous call."""
        values = layer_diagnostics(self.network, x, self.targets(np.asarray(y)),
                                   self._diagnosed_weights)
        self._diagnosed_weights = [w.copy() for w in self.network.weights]
        return values

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.network.predict_proba(x, self.trainer.eval_batch_size)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean accuracy, as scikit-learn's ClassifierMixin.score."""
        return float(np.mean(self.predict(x) == np.asarray(y)))
