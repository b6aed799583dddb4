"""Activations, output functions and losses, looked up by their config names.

Every derivative is written in terms of the activation a = f(z), as in the book (σ' = a(1 − a)),
so backprop never keeps z. Each loss gives its value and its gradient with respect to the output
activation; the pairs whose output delta simplifies to a − y are fused (Nielsen ch.3, eq. 66).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # σ(z) = ½ + ½·tanh(z/2): overflow-free for any z, and one SIMD tanh pass
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def tanh(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.tanh(z, out=out)


def relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(z, 0, out=out)


def identity(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    if out is None:
        return z.copy()
    out[...] = z
    return out


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # subtract the row maximum first: same result, no overflow in exp
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class Activation:
    forward: Callable[..., np.ndarray]
    # f'(z) from a = f(z); None for softmax, whose Jacobian is not a diagonal (see vjp)
    derivative: Callable[[np.ndarray], np.ndarray] | None
    # δ ⊙= f'(z) in place, without a temporary f'(z) array where the unit allows it
    scale_in_place: Callable[[np.ndarray, np.ndarray], None] | None = None

    def multiply_derivative(self, delta: np.ndarray, a: np.ndarray) -> None:
        """δ ← δ ⊙ f'(z), f'(z) taken from a = f(z) (BP2)."""
        if self.scale_in_place is not None:
            self.scale_in_place(delta, a)
        else:
            delta *= self.derivative(a)

    def vjp(self, a: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """dC/dz given a = f(z) and dC/da (the output layer's BP1)."""
        if self.derivative is None:  # softmax: J = diag(a) − a aᵀ, so Jᵀg = a ⊙ (g − ⟨g, a⟩)
            return a * (grad - np.sum(grad * a, axis=1, keepdims=True))
        return grad * self.derivative(a)


def with_derivative_quirk(unit: Activation) -> Activation:
    """The blog network's slip: f' evaluated at the activation a as if it were z, f'(f(a)).
    Softmax's Jacobian has no such reading and stays as it is."""
    if unit.derivative is None:
        return unit
    return Activation(unit.forward, lambda a: unit.derivative(unit.forward(a)))


def _sigmoid_scale(delta: np.ndarray, a: np.ndarray) -> None:
    delta *= a
    delta -= delta * a  # δ·a − δ·a² = δ·a(1 − a)


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(sigmoid, lambda a: a * (1 - a), scale_in_place=_sigmoid_scale),
    "tanh": Activation(tanh, lambda a: 1 - a * a),
    "relu": Activation(relu, lambda a: (a > 0).astype(a.dtype),
                       scale_in_place=lambda delta, a: np.multiply(delta, a > 0, out=delta)),
    "identity": Activation(identity, lambda a: np.ones_like(a),
                           scale_in_place=lambda delta, a: None),
}
OUTPUTS: dict[str, Activation] = {
    "sigmoid": ACTIVATIONS["sigmoid"],
    "tanh": ACTIVATIONS["tanh"],  # rolisz's network: tanh on every layer
    "identity": ACTIVATIONS["identity"],
    "softmax": Activation(softmax, None),
}


def _log(a: np.ndarray) -> np.ndarray:
    # log of a probability, clipped so a saturated unit gives a large finite cost, not inf
    eps = np.finfo(a.dtype).eps
    return np.log(np.clip(a, eps, 1.0))


@dataclass(frozen=True)
class Loss:
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]  # per-sample cost, shape (m,)
    grad: Callable[[np.ndarray, np.ndarray], np.ndarray]  # dC/da per sample
    fused_output: str | None = None  # the output whose delta is exactly a − y
    outputs: tuple[str, ...] | None = None  # the outputs it is defined on; None = any


LOSSES: dict[str, Loss] = {
    # ½‖a − y‖²: Nielsen ch.1, LeCun's MSE, Rashid, the blog network
    "quadratic": Loss(lambda a, y: 0.5 * np.sum((a - y) ** 2, axis=1), lambda a, y: a - y),
    # −Σ [y ln a + (1 − y) ln(1 − a)] over independent sigmoid outputs (Nielsen ch.3)
    "binary_ce": Loss(
        lambda a, y: -np.sum(y * _log(a) + (1 - y) * _log(1 - a), axis=1),
        lambda a, y: (a - y) / np.clip(a * (1 - a), np.finfo(a.dtype).tiny, None),
        fused_output="sigmoid",
        outputs=("sigmoid",),  # independent units in (0, 1)
    ),
    # −Σ y ln a on a probability vector (softmax + log-likelihood, Nielsen ch.6, scikit-learn)
    "cross_entropy": Loss(
        lambda a, y: -np.sum(y * _log(a), axis=1),
        lambda a, y: -y / np.clip(a, np.finfo(a.dtype).tiny, None),
        fused_output="softmax",
        outputs=("sigmoid", "softmax"),  # log a needs a in (0, 1)
    ),
}


def output_delta(output: str, loss: str, a: np.ndarray, y: np.ndarray,
                 unit: Activation | None = None) -> np.ndarray:
    """BP1: δᴸ = ∇ₐC ⊙ f'(zᴸ), or a − y for the fused pairs; `unit` is the output unit as the
    network holds it (the quirked one, say), OUTPUTS[output] by default."""
    if LOSSES[loss].fused_output == output:
        # sigmoid + binary CE: a − y; softmax + CE: a·Σy − y, which is a − y for one-hot targets
        return a * y.sum(axis=1, keepdims=True) - y if output == "softmax" else a - y
    return (unit or OUTPUTS[output]).vjp(a, LOSSES[loss].grad(a, y))
