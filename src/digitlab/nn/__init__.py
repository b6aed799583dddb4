"""The network: functions (activations, losses), init (initial weights, row orders, the seed's
streams), network (BP1–BP4, the reference path, per-layer diagnostics), optimizers (with plain
SGD's fused fast path), per_sample (the compiled batch-1 path), classifier.
It knows no config schema and no tracker. Here: the network's settings as plain values (its
architecture, its optimizer, its training loop); the classifier takes these, and
digitlab.config's schemas extend them with the checks and the keys of a run that the network
does not need (the data, tracking, early stopping).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class NetworkSettings:
    hidden: Any = field(default_factory=lambda: [32])  # int or list of widths; [] = no hidden layer
    activation: str = "sigmoid"  # the textbook unit (Nielsen, the blog network)
    output: str = "softmax"  # the output units: softmax | sigmoid (Nielsen ch.1) | tanh | identity
    loss: str = "cross_entropy"  # with softmax its output delta is simply a − y
    init: str = "normal_fan_in"  # N(0, 1/n_in) keeps sigmoid units out of saturation (Nielsen ch.3)
    init_scale: float = 0.25  # r of the uniform(−r, r) init (rolisz)
    output_init: str = "same"  # zero = output weights start at 0 (Nielsen ch.6)
    bias: bool = True  # false = layers without bias vectors
    derivative_quirk: bool = False  # the blog network's σ'(a) on a = σ(z); docs/configuration.md
    target_low: float = 0.0  # one-hot targets; Rashid uses 0.01 / 0.99
    target_high: float = 1.0  # the one-hot target of the true class


@dataclass
class OptimizerSettings:
    name: str = "sgd"  # sgd | adam
    lr: float = 0.5  # η, on the mini-batch's mean gradient; Nielsen's CE networks: 0.5 at batch 10
    momentum: float = 0.0  # classical momentum μ; 0 = plain SGD
    nesterov: bool = False  # Nesterov's momentum (scikit-learn's default with momentum)
    l2: float = 0.0  # λ (nielsen) or α (sklearn); 0 = no weight decay
    l2_style: str = "nielsen"  # nielsen: w ← (1 − ηλ/n)w, n = training rows; sklearn: + α/m · w
    schedule: str = "constant"  # halving: the blog network's η/2 per pass; exponential: η·γ^epoch
    gamma: float = 0.95  # the exponential schedule's factor per pass
    beta1: float = 0.9  # Adam's moment decays and ε, at scikit-learn's defaults
    beta2: float = 0.999  # Adam's second-moment decay
    epsilon: float = 1e-8  # Adam's ε, added to the root of the second moment


@dataclass
class LoopSettings:
    epochs: int = 20  # passes over the training rows; the digits converge in ≈ 20 at lr 0.5
    batch_size: int = 10  # Nielsen's mini-batch; 1 = the blog network's per-sample updates
    order: str = "shuffle"  # shuffle each epoch | file order | random draws with replacement
    dtype: str = "float32"  # half the memory traffic of float64 at the same accuracy
    eval_batch_size: int = 4096  # rows per forward pass when scoring; bounds memory
    # BLAS threads during the mini-batch loop: an integer, None = BLAS's default (every core the
    # job has), or auto = every core when OpenBLAS's idle threads sleep at once (digitlab imported
    # before NumPy) and the batch has more than one row, else one (benchmarks/NOTES.md § 6)
    blas_threads: Any = "auto"
    # auto = the compiled per-sample loop where it applies (batch 1, plain SGD), NumPy/BLAS calls
    # elsewhere; numpy = NumPy/BLAS calls throughout (benchmarks/NOTES.md § 7); reference = the
    # textbook path everywhere (backprop, then the optimizer's update; no fused BLAS step)
    engine: str = "auto"

    def loop_threads(self) -> int | None:
        """The BLAS thread limit of the mini-batch loop (None: no limit of its own)."""
        if self.blas_threads == "auto":
            from digitlab import idle_blas_threads_sleep

            return None if self.batch_size > 1 and idle_blas_threads_sleep() else 1
        return self.blas_threads
