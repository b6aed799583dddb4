"""Optimizers apart from the model: each has `update(params, grads)` and changes params in place.

The update rules follow scikit-learn's `_stochastic_optimizers.py` so the same settings give the
same trajectory. L2 weight decay is added to the weight gradients (never the biases) as
`decay · w`, where decay is λ/n (Nielsen, n = training rows) or α/m (scikit-learn, m = batch).

`sgd_step` is the fast path of plain mini-batch SGD: the reference update (`Network.backprop`,
then `SGD.update`) with η folded into δ, so each weight matrix takes one in-place BLAS call and
no gradient buffer. Equal to the reference up to float rounding (tests/test_gradients.py).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from digitlab.nn import OptimizerSettings
from digitlab.nn.network import Network

# learning rate of pass `epoch` (0-based) from the optimizer's settings
SCHEDULES = {
    "constant": lambda cfg, epoch: cfg.lr,
    "halving": lambda cfg, epoch: cfg.lr * 0.5**epoch,  # the blog network: η/2 after every pass
    "exponential": lambda cfg, epoch: cfg.lr * cfg.gamma**epoch,  # PyTorch's ExponentialLR
}


def weight_decay(cfg: OptimizerSettings, n_train: int, batch_size: int) -> float:
    """The coefficient c of the decay term c·w added to each weight gradient."""
    if cfg.l2 == 0:
        return 0.0
    # Nielsen: w ← (1 − ηλ/n) w − η ∇ ⇔ ∇ + (λ/n) w; scikit-learn: ∇ + (α/m) w
    return cfg.l2 / (n_train if cfg.l2_style == "nielsen" else batch_size)


class SGD:
    """Mini-batch SGD with optional (Nesterov) momentum: v ← μv − η g; w ← w + v."""

    def __init__(self, params: list[np.ndarray], lr: float, momentum: float = 0.0,
                 nesterov: bool = False):
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.velocities = [np.zeros_like(p) for p in params] if momentum else None

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if self.velocities is None:
            for p, g in zip(params, grads):
                p -= self.lr * g
            return
        for p, g, v in zip(params, grads, self.velocities):
            v *= self.momentum
            v -= self.lr * g
            if self.nesterov:  # look ahead: w ← w + μv − η g
                p += self.momentum * v - self.lr * g
            else:
                p += v


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction folded into the step size, as scikit-learn."""

    def __init__(self, params: list[np.ndarray], lr: float, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        step = self.lr * np.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * (g * g)
            p -= step * m / (np.sqrt(v) + self.epsilon)


OPTIMIZERS = {
    "sgd": lambda cfg, params: SGD(params, cfg.lr, cfg.momentum, cfg.nesterov),
    "adam": lambda cfg, params: Adam(params, cfg.lr, cfg.beta1, cfg.beta2, cfg.epsilon),
}


def make_optimizer(cfg: OptimizerSettings, params: list[np.ndarray]) -> SGD | Adam:
    return OPTIMIZERS[cfg.name](cfg, params)


GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}
GER = {np.dtype(np.float32): blas.sger, np.dtype(np.float64): blas.dger}


def descend(w: np.ndarray, a: np.ndarray, delta: np.ndarray, shrink: float) -> None:
    """w ← shrink·w − aᵀδ in place, in one BLAS call: the product is accumulated into w as it is
    computed (gemm's β), with no gradient buffer and no second pass over w. One sample is a
    rank-1 update (ger). BLAS is column-major, so it updates wᵀ, which is w's memory."""
    target = w.T  # Fortran-ordered view: BLAS writes through it without a copy
    if len(a) == 1 and shrink == 1.0:
        out = GER[w.dtype](-1.0, delta[0], a[0], a=target, overwrite_a=True)
    else:
        out = GEMM[w.dtype](-1.0, delta.T, a.T, beta=shrink, c=target, trans_b=True,
                            overwrite_c=True)
    if not np.may_share_memory(out, w):  # f2py had to copy (an unusual layout): write back
        w[...] = out.T


def sgd_step(network: Network, x: np.ndarray, y: np.ndarray, lr: float,
             decay: float = 0.0) -> np.ndarray:
    """Nielsen's update_mini_batch: w ← (1 − η·decay)·w − η·∂C/∂w, b ← b − η·∂C/∂b.
    Returns the output activations."""
    activations = network.forward(x)
    for layer, delta in network.errors(activations, y, lr / len(y)):
        descend(network.weights[layer], activations[layer], delta, 1.0 - lr * decay)  # BP4
        if network.biases is not None:
            network.biases[layer] -= delta.sum(axis=0)  # η·∂C/∂b (BP3)
    return activations[-1]
