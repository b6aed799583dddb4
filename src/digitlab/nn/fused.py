"""The fast path of plain mini-batch SGD: the reference update (`Network.backprop`, then
`SGD.update`) with η folded into δ, so each weight matrix takes one in-place BLAS call and no
gradient buffer. Equal to the reference up to float rounding (tests/test_gradients.py)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from digitlab.nn.network import Network

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
