"""A fully connected network and its backpropagation, batched and row-major.

One sample per row: the layer map is Z = A @ W + b (scikit-learn's layout), W of shape
(fan_in, fan_out). `backprop` is Nielsen's four equations in order, for a whole mini-batch at once.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.linalg import blas

from digitlab.config import ModelConfig
from digitlab.nn.functions import (ACTIVATIONS, LOSSES, OUTPUTS, output_delta,
                                   with_derivative_quirk)

Init = Callable[[int, int, np.random.Generator, ModelConfig], tuple[np.ndarray, np.ndarray]]
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


def _glorot(fan_in: int, fan_out: int, rng: np.random.Generator, cfg: ModelConfig):
    # scikit-learn's MLP init: U(±√(k/(fan_in+fan_out))), k = 2 for sigmoid units, else 6
    bound = np.sqrt((2.0 if cfg.activation == "sigmoid" else 6.0) / (fan_in + fan_out))
    return rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)


INITS: dict[str, Init] = {
    # N(0, 1) weights and biases: the blog network, Nielsen ch.1 ("large" init in ch.3)
    "normal": lambda i, o, rng, cfg: (rng.standard_normal((i, o)), rng.standard_normal(o)),
    # N(0, 1/fan_in) weights, N(0, 1) biases: Nielsen ch.3's default, Rashid (no biases)
    "normal_fan_in": lambda i, o, rng, cfg: (rng.normal(0, 1 / np.sqrt(i), (i, o)),
                                             rng.standard_normal(o)),
    # N(0, 1/fan_out) weights, N(0, 1) biases: Nielsen ch.6's network3 hidden layers
    "normal_fan_out": lambda i, o, rng, cfg: (rng.normal(0, 1 / np.sqrt(o), (i, o)),
                                              rng.standard_normal(o)),
    "glorot_uniform": _glorot,
    # U(±r) weights and biases: rolisz's network, r = model.init_scale
    "uniform": lambda i, o, rng, cfg: (rng.uniform(-cfg.init_scale, cfg.init_scale, (i, o)),
                                       rng.uniform(-cfg.init_scale, cfg.init_scale, o)),
}


class Network:
    def __init__(self, weights: list[np.ndarray], biases: list[np.ndarray] | None,
                 activation: str = "sigmoid", output: str = "softmax",
                 loss: str = "cross_entropy", quirk: bool = False):
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
    def initialise(cls, n_in: int, n_out: int, cfg: ModelConfig, rng: np.random.Generator,
                   dtype: str = "float32") -> Network:
        sizes = [n_in, *cfg.hidden, n_out]
        weights, biases = [], []
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            w, b = INITS[cfg.init](fan_in, fan_out, rng, cfg)
            if layer == len(sizes) - 1 and cfg.output_init == "zero":
                w, b = np.zeros_like(w), np.zeros_like(b)
            weights.append(np.ascontiguousarray(w, dtype=dtype))
            biases.append(np.asarray(b, dtype=dtype))
        return cls(weights, biases if cfg.bias else None, cfg.activation, cfg.output, cfg.loss,
                   cfg.derivative_quirk)

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

    def _errors(self, activations: list[np.ndarray], y: np.ndarray, scale: float):
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
        for layer, delta in self._errors(activations, y, 1 / len(y)):
            grad_w[layer] = activations[layer].T @ delta  # BP4: ∂C/∂w = aˡ⁻¹ᵀ δˡ
            grad_b[layer] = delta.sum(axis=0)  # BP3: ∂C/∂b = δˡ
        return [*grad_w, *(grad_b if self.biases is not None else [])], activations

    def sgd_step(self, x: np.ndarray, y: np.ndarray, lr: float, decay: float = 0.0) -> np.ndarray:
        """Nielsen's update_mini_batch: w ← (1 − η·decay)·w − η·∂C/∂w, b ← b − η·∂C/∂b.

        The same update as `backprop` + `SGD.update`, with η folded into δ (which is small) so
        each weight matrix takes one in-place BLAS call (`descend`). Returns the output
        activations."""
        activations = self.forward(x)
        for layer, delta in self._errors(activations, y, lr / len(y)):
            descend(self.weights[layer], activations[layer], delta, 1.0 - lr * decay)  # BP4
            if self.biases is not None:
                self.biases[layer] -= delta.sum(axis=0)  # η·∂C/∂b (BP3)
        return activations[-1]

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
