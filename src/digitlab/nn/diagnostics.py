"""What backprop does to each layer, measured on a fixed probe set of training rows.

For each layer l (1 = the first hidden layer, L = the output layer), through the reference path
of the four equations (`Network.forward`, then `Network.errors`: BP1 δᴸ, BP2 δˡ⁻¹ = δˡWˡᵀ ⊙ f′):

    grad_b_norm   ‖∂C/∂bˡ‖ = ‖mean over the probe rows of δˡ‖ (BP3) — Nielsen's "speed of
                  learning" of the layer (ch. 5, fig/generate_gradient.py)
    grad_w_norm   ‖∂C/∂Wˡ‖ = ‖aˡ⁻¹ᵀ δˡ / m‖, Frobenius (BP4)
    weight_norm   ‖Wˡ‖, Frobenius
    update_ratio  ‖Wˡ − Wˡ at the previous measurement‖ / ‖Wˡ‖: how far one epoch of updates
                  moved the layer, relative to its size (the last update when an epoch is one
                  mini-batch)
    saturated     the share of (row, unit) pairs whose sigmoid or tanh output lies within 0.01
                  of its bounds (σ′ or tanh′ nearly 0: δ barely passes); for relu, the share of
                  units dead (output 0) on every probe row

C is the cost without its L2 term, as Nielsen measures it. Whatever engine trained the network,
these are computed the same way, so they mean the same for every run.
"""

from __future__ import annotations

import numpy as np

from digitlab.nn.network import Network

PROBE_ROWS = 1000  # Nielsen's: the first 1,000 training images
SATURATION_MARGIN = 0.01  # an output this close to a bound counts as saturated
BOUNDS = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
QUANTITIES = ("grad_b_norm", "grad_w_norm", "weight_norm", "update_ratio", "saturated")


def probe_rows(n: int, rng: np.random.Generator, size: int = PROBE_ROWS) -> np.ndarray:
    """`size` row indices of `n` drawn by `rng`, in row order; every row when n ≤ size."""
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def saturated_share(function: str, a: np.ndarray) -> float | None:
    """The saturated share of a layer's outputs `a` (rows × units), or None for a function that
    does not saturate (identity, softmax)."""
    if function in BOUNDS:
        low, high = BOUNDS[function]
        near = (a <= low + SATURATION_MARGIN) | (a >= high - SATURATION_MARGIN)
        return float(np.count_nonzero(near)) / a.size
    if function == "relu":
        return float(np.count_nonzero(~np.any(a > 0, axis=0))) / a.shape[1]
    return None


def _norm(a: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64, copy=False)))


def layer_diagnostics(network: Network, x: np.ndarray, targets: np.ndarray,
                      previous: list[np.ndarray] | None = None) -> dict[str, float]:
    """The module's quantities for every layer, named `layer<l>.<quantity>`, on the rows `x`
    (scaled as the network's inputs) with one-hot `targets`; `previous` are the weights at the
    last measurement (no update_ratio without them)."""
    x = np.asarray(x, dtype=network.dtype)
    activations = network.forward(x)
    last = len(network.weights) - 1
    values: dict[str, float] = {}
    for layer, delta in network.errors(activations, targets.astype(network.dtype), 1 / len(x)):
        name = f"layer{layer + 1}."
        weights = network.weights[layer]
        values[name + "grad_b_norm"] = _norm(delta.sum(axis=0))  # BP3, averaged over the rows
        values[name + "grad_w_norm"] = _norm(activations[layer].T @ delta)  # BP4
        values[name + "weight_norm"] = _norm(weights)
        if previous is not None:
            values[name + "update_ratio"] = _norm(weights - previous[layer]) / max(
                values[name + "weight_norm"], np.finfo(np.float64).tiny)
        function = network.output_name if layer == last else network.activation_name
        share = saturated_share(function, activations[layer + 1])
        if share is not None:
            values[name + "saturated"] = share
    return dict(sorted(values.items()))
