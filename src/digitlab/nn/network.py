"""A fully connected network and its backpropagation, batched and row-major.

One sample per row: the layer map is Z = A @ W + b (scikit-learn's layout), W of shape
(fan_in, fan_out). `backprop` is Nielsen's four equations in order, for a whole mini-batch at
once; with an optimizer's `update` it is the reference path of training. The fast paths
(`optimizers.sgd_step`, `per_sample`) are tested equal to it.

What backprop does to each layer (`layer_diagnostics`), measured on a fixed probe set of training
rows. For each layer l (1 = the first hidden layer, L = the output layer), through the reference
path of the four equations (`Network.forward`, then `Network.errors`: BP1 δᴸ, BP2
δˡ⁻¹ = δˡWˡᵀ ⊙ f′):

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

from digitlab.nn.functions import ACTIVATIONS, LOSSES, OUTPUTS, output_delta, with_derivative_quirk
from digitlab.nn.init import INITS


class Network:
    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray] | None, *,
                 activation: str, output: str, loss: str, quirk: bool = False):
        self.weights = weights
        self.biases = biases  # None = a network without biases (Rashid)
        self.activation_name, self.output_name, self.loss_name = activation, output, loss
        self.quirk = quirk
        self._look_up_functions()

    def _look_up_functions(self) -> None:
        quirked = with_derivative_quirk if self.quirk else (lambda unit: unit)
        self.activation = quirked(ACTIVATIONS[self.activation_name])
        self.output = quirked(OUTPUTS[self.output_name])
        self.loss = LOSSES[self.loss_name]

    @classmethod
    def initialise(cls, sizes: list[int], rng: np.random.Generator, *, init: str,
                   init_scale: float, zero_output: bool, bias: bool, dtype: str,
                   **functions) -> Network:
        """Fresh weights for layer widths `sizes` (inputs first) by the scheme `init`;
        `zero_output` starts the output layer at 0; `functions` are activation, output, loss,
        quirk."""
        weights, biases = [], []
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            w, b = INITS[init](fan_in, fan_out, rng, functions["activation"], init_scale)
            if layer == len(sizes) - 1 and zero_output:
                w, b = np.zeros_like(w), np.zeros_like(b)
            weights.append(np.ascontiguousarray(w, dtype=dtype))
            biases.append(np.asarray(b, dtype=dtype))
        return cls(weights, biases if bias else None, **functions)

    def __getstate__(self) -> dict:
        # the registry entries hold lambdas: pickle their names (joblib, scikit-learn's clone)
        return {k: v for k, v in self.__dict__.items() if k not in ("activation", "output", "loss")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._look_up_functions()

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], **functions) -> Network:
        """Rebuild from `state()` arrays; `functions` are activation, output, loss, quirk."""
        depth = sum(1 for k in state if k.startswith("W"))
        weights = [np.ascontiguousarray(state[f"W{i}"]) for i in range(1, depth + 1)]
        biases = [np.asarray(state[f"b{i}"]) for i in range(1, depth + 1)] if "b1" in state else None
        return cls(weights, biases, **functions)

    @property
    def params(self) -> list[np.ndarray]:
        """Weights then biases: the order of `backprop`'s gradients and the optimizer's state."""
        return [*self.weights, *(self.biases or [])]

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Activations of every layer, a⁰ = x; aˡ = f(aˡ⁻¹ Wˡ + bˡ)."""
        activations = [x]
        last = len(self.weights) - 1
        for layer, w in enumerate(self.weights):
            z = activations[-1] @ w
            if self.biases is not None:
                z += self.biases[layer]
            f = self.output if layer == last else self.activation
            activations.append(f.forward(z, out=z))
        return activations

    def errors(self, activations: list[np.ndarray], y: np.ndarray, scale: float):
        """(l, δˡ) from the output layer down, each δ times `scale` (1/m: batch-mean gradients).

        δˡ⁻¹ is computed before δˡ is handed out, so the caller may update Wˡ in place."""
        # BP1: the output error δᴸ = ∇ₐC ⊙ f'(zᴸ)
        delta = output_delta(self.output_name, self.loss_name, activations[-1], y, self.output)
        delta *= scale
        for layer in range(len(self.weights) - 1, -1, -1):
            previous = None
            if layer > 0:  # BP2: δˡ⁻¹ = (δˡ Wˡᵀ) ⊙ f'(zˡ⁻¹)
                previous = delta @ self.weights[layer].T
                self.activation.multiply_derivative(previous, activations[layer])
            yield layer, delta
            delta = previous

    def backprop(self, x: np.ndarray, y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Gradients of the batch-mean cost, in `params` order, and the activations."""
        activations = self.forward(x)
        grad_w: list[np.ndarray] = [None] * len(self.weights)  # type: ignore[list-item]
        grad_b: list[np.ndarray] = [None] * len(self.weights)  # type: ignore[list-item]
        for layer, delta in self.errors(activations, y, 1 / len(y)):
            grad_w[layer] = activations[layer].T @ delta  # BP4: ∂C/∂w = aˡ⁻¹ᵀ δˡ
            grad_b[layer] = delta.sum(axis=0)  # BP3: ∂C/∂b = δˡ
        return [*grad_w, *(grad_b if self.biases is not None else [])], activations

    def predict_proba(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Output activations, computed in chunks of `batch_size` rows to bound memory."""
        x = np.asarray(x, dtype=self.dtype)
        return np.concatenate([self.forward(x[i:i + batch_size])[-1]
                               for i in range(0, len(x), batch_size)] or
                              [np.empty((0, self.weights[-1].shape[1]), self.dtype)])

    def cost(self, output: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample cost of output activations against targets."""
        return self.loss.value(output, y)

    def state(self) -> dict[str, np.ndarray]:
        """Plain arrays W1, b1, W2, … (saved with np.savez, loaded with allow_pickle=False)."""
        state = {f"W{i}": w.copy() for i, w in enumerate(self.weights, start=1)}
        for i, b in enumerate(self.biases or [], start=1):
            state[f"b{i}"] = b.copy()
        return state


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
