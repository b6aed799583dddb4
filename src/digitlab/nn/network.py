"""A fully connected network and its backpropagation, batched and row-major.

One sample per row: the layer map is Z = A @ W + b (scikit-learn's layout), W of shape
(fan_in, fan_out). `backprop` is Nielsen's four equations in order, for a whole mini-batch at
once; with an optimizer's `update` it is the reference path of training. The fast paths (`optimizers.sgd_step`, `per_sample`) are tested
equal to it.
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

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for i, w in enumerate(self.weights, start=1):
            w[...] = state[f"W{i}"]
        for i, b in enumerate(self.biases or [], start=1):
            b[...] = state[f"b{i}"]
