"""The per-sample (batch 1) SGD pass as one compiled loop: the blog network's mode without ≈ 20 NumPy
calls per sample on 784-element vectors (benchmarks/NOTES.md § 7).

The same update as `optimizers.sgd_step` on one row at a time (equal up to float rounding):
forward, the output error (BP1), the errors down the layers (BP2), then w ← shrink·w − η·aᵀδ and
b ← b − η·δ (BP3, BP4). Two exact savings the BLAS path cannot make:
- the first layer's update of sample k and its forward pass for sample k+1 share one sweep over
  W¹ (row i of the updated W¹ is multiplied by pixel i of the next image while it is in cache);
- a zero pixel leaves its row of W¹ unchanged and adds nothing to z¹, so its row is skipped
  (most MNIST pixels are 0). Not with weight decay, where every row shrinks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit
from numba.typed import List

from digitlab.nn.functions import LOSSES

# unit codes inside the kernel; the names are the config's
UNITS = {"sigmoid": 0, "tanh": 1, "relu": 2, "identity": 3, "softmax": 4}
LOSS_CODES = {"quadratic": 0, "binary_ce": 1, "cross_entropy": 2}
SOFTMAX = 4


@njit(cache=True)
def _unit(code, z):
    if code == 0:  # σ(z) = ½ + ½·tanh(z/2), as functions.sigmoid
        return 0.5 * np.tanh(0.5 * z) + 0.5
    if code == 1:
        return np.tanh(z)
    if code == 2:
        return max(z, 0.0)
    return z


@njit(cache=True)
def _derivative(code, a):
    """f'(z) from a = f(z), as functions.ACTIVATIONS (softmax's Jacobian: _output_error)."""
    if code == 0:
        return a * (1.0 - a)
    if code == 1:
        return 1.0 - a * a
    if code == 2:
        return 1.0 if a > 0 else 0.0
    return 1.0


@njit(cache=True)
def _slope(code, a, quirk):
    # the blog network's quirk takes σ' at the activation itself: f'(f(a))
    return _derivative(code, _unit(code, a)) if quirk else _derivative(code, a)


@njit(cache=True)
def _activate(code, z):
    """z ← f(z) in place."""
    if code == SOFTMAX:  # the maximum first: no overflow in exp
        top = z.max()
        total = 0.0
        for j in range(z.size):
            z[j] = np.exp(z[j] - top)
            total += z[j]
        for j in range(z.size):
            z[j] /= total
    else:
        for j in range(z.size):
            z[j] = _unit(code, z[j])


@njit(cache=True)
def _cost(loss, a, y, eps):
    """One sample's cost, as functions.LOSSES (log clipped at eps)."""
    total = 0.0
    for j in range(a.size):
        if loss == 0:
            total += 0.5 * (a[j] - y[j]) ** 2
        elif loss == 1:
            total -= (y[j] * np.log(min(max(a[j], eps), 1.0))
                      + (1.0 - y[j]) * np.log(min(max(1.0 - a[j], eps), 1.0)))
        else:
            total -= y[j] * np.log(min(max(a[j], eps), 1.0))
    return total


@njit(cache=True)
def _output_error(delta, a, y, output, loss, fused, quirk, tiny):
    """BP1 into delta: a − y for the fused pairs, else ∇ₐC ⊙ f'(z) (softmax: its Jacobian)."""
    if fused:  # sigmoid + binary CE: a − y; softmax + CE: a·Σy − y
        scale = y.sum() if output == SOFTMAX else 1.0
        for j in range(a.size):
            delta[j] = a[j] * scale - y[j]
        return
    for j in range(a.size):
        if loss == 0:
            delta[j] = a[j] - y[j]
        elif loss == 1:
            delta[j] = (a[j] - y[j]) / max(a[j] * (1.0 - a[j]), tiny)
        else:
            delta[j] = -y[j] / max(a[j], tiny)
    if output == SOFTMAX:  # Jᵀg = a ⊙ (g − ⟨g, a⟩)
        inner = 0.0
        for j in range(a.size):
            inner += delta[j] * a[j]
        for j in range(a.size):
            delta[j] = a[j] * (delta[j] - inner)
    else:
        for j in range(a.size):
            delta[j] *= _slope(output, a[j], quirk)


@njit(cache=True)
def _first_layer(w, b, x, x_next, delta, z_next, lr, shrink, has_bias):
    """W¹ ← shrink·W¹ − η·xᵀδ, b¹ ← b¹ − η·δ, and z¹ of the next sample, in one sweep over W¹."""
    fan_out = w.shape[1]
    for j in range(fan_out):
        if has_bias:
            b[j] -= lr * delta[j]
        z_next[j] = b[j] if has_bias else 0.0
    for i in range(w.shape[0]):
        step = lr * x[i]
        if shrink != 1.0:
            for j in range(fan_out):
                w[i, j] = shrink * w[i, j] - step * delta[j]
        elif step != 0.0:  # a zero pixel leaves its row as it is
            for j in range(fan_out):
                w[i, j] -= step * delta[j]
        pixel = x_next[i]
        if pixel != 0.0:
            for j in range(fan_out):
                z_next[j] += pixel * w[i, j]


@njit(cache=True)
def _forward_z(w, b, a, z, has_bias):
    """z ← a W + b, row by row of W (a zero input adds nothing)."""
    for j in range(w.shape[1]):
        z[j] = b[j] if has_bias else 0.0
    for i in range(w.shape[0]):
        if a[i] != 0.0:
            for j in range(w.shape[1]):
                z[j] += a[i] * w[i, j]


@njit(cache=True)
def sgd_pass(x, order, targets, labels, weights, biases, has_bias, lr, shrink,
             hidden, output, loss, fused, quirk, eps, tiny, cost_so_far):
    """One pass of per-sample SGD over x[order]; returns (cost_so_far + Σ cost, correct
    predictions). A pass cut into pieces gives the same bits: the cost goes on from the
    previous piece's sum, and z¹ of a piece's first sample is computed as the sweep would."""
    depth = len(weights)
    acts = List()  # acts[l] holds aˡ⁺¹ (a⁰ is the sample itself), z computed in place
    deltas = List()
    for w in weights:
        acts.append(np.zeros(w.shape[1], dtype=x.dtype))
        deltas.append(np.zeros(w.shape[1], dtype=x.dtype))
    z_next = np.zeros(weights[0].shape[1], dtype=x.dtype)
    blank = np.zeros(x.shape[1], dtype=x.dtype)  # the "next sample" after the last
    total_cost, correct = cost_so_far, 0
    n = order.size
    if n:
        _forward_z(weights[0], biases[0], x[order[0]], z_next, has_bias)
    for k in range(n):
        sample = x[order[k]]
        acts[0][:] = z_next  # z¹ came from the previous sample's sweep over W¹
        for layer in range(depth):
            if layer > 0:
                _forward_z(weights[layer], biases[layer], acts[layer - 1], acts[layer], has_bias)
            _activate(output if layer == depth - 1 else hidden, acts[layer])
        top, y = acts[depth - 1], targets[order[k]]
        total_cost += _cost(loss, top, y, eps)
        if np.argmax(top) == labels[order[k]]:
            correct += 1
        _output_error(deltas[depth - 1], top, y, output, loss, fused, quirk, tiny)
        for layer in range(depth - 1, 0, -1):  # BP2 with the old Wˡ, then its update (BP3, BP4)
            w, below, d, a = weights[layer], deltas[layer - 1], deltas[layer], acts[layer - 1]
            for i in range(w.shape[0]):
                back = 0.0
                for j in range(w.shape[1]):
                    back += w[i, j] * d[j]
                below[i] = back * _slope(hidden, a[i], quirk)
                step = lr * a[i]
                for j in range(w.shape[1]):
                    w[i, j] = (shrink * w[i, j] if shrink != 1.0 else w[i, j]) - step * d[j]
            if has_bias:
                for j in range(w.shape[1]):
                    biases[layer][j] -= lr * d[j]
        following = x[order[k + 1]] if k + 1 < n else blank
        _first_layer(weights[0], biases[0], sample, following, deltas[0], z_next, lr, shrink,
                     has_bias)
    return total_cost, correct


def one_pass(network, x: np.ndarray, order: np.ndarray, targets: np.ndarray,
             labels: np.ndarray, lr: float, shrink: float,
             on_rows: Callable[[int, int], None] | None = None,
             rows_per_call: int = 0) -> tuple[float, int] | None:
    """Run `sgd_pass` on the network's own arrays (updated in place): the pass's total cost and
    correct count, or None for a unit or loss the kernel has no code for. With `on_rows`, the
    pass runs `rows_per_call` rows at a time and reports (rows done, rows) after each piece:
    the same bits as one call."""
    names = (network.activation_name, network.output_name)
    if not set(names) <= UNITS.keys() or network.loss_name not in LOSS_CODES:
        return None
    dtype = network.dtype
    weights = List(network.weights)
    # a network without biases passes zero-length placeholders the kernel never reads
    biases = List(network.biases if network.biases is not None
                  else [np.zeros(0, dtype) for _ in network.weights])
    finfo = np.finfo(dtype)
    x = np.ascontiguousarray(x)
    n = len(order)
    step = rows_per_call if on_rows is not None and rows_per_call > 0 else max(n, 1)
    total_cost, correct = 0.0, 0
    for start in range(0, n, step):
        total_cost, hits = sgd_pass(
            x, order[start:start + step], targets, labels, weights, biases,
            network.biases is not None, dtype.type(lr), dtype.type(shrink),
            UNITS[network.activation_name], UNITS[network.output_name],
            LOSS_CODES[network.loss_name],
            LOSSES[network.loss_name].fused_output == network.output_name,
            network.quirk, dtype.type(finfo.eps), dtype.type(finfo.tiny), total_cost)
        correct += hits
        if on_rows is not None:
            on_rows(min(start + step, n), n)
    return total_cost, correct
