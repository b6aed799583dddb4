"""Finite-difference checks of backprop (float64) for every activation × output × loss, with two
hidden layers and with L2, in the shape of scikit-learn's test_mlp.py gradient test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from digitlab.config import ACTIVATIONS, LOSS_OUTPUTS, ModelConfig, OptimConfig
from digitlab.nn.classifier import network_for
from digitlab.nn.optimizers import SGD, sgd_step, weight_decay

COMBOS = [(a, o, loss) for a, (o, losses) in itertools.product(ACTIVATIONS, LOSS_OUTPUTS.items())
          for loss in losses]


def _problem(activation, output, loss, dtype="float64", bias=True):
    rng = np.random.default_rng(7)
    cfg = ModelConfig(hidden=[6, 5], activation=activation, output=output, loss=loss,
                      init="normal_fan_in", bias=bias)
    net = network_for(cfg, 4, 3, rng, dtype)
    x = rng.uniform(-1, 1, (8, 4)).astype(dtype)
    # soft targets inside (0, 1) keep every loss finite and differentiable
    y = np.full((8, 3), 0.05) + 0.9 * np.eye(3)[rng.integers(0, 3, 8)]
    if activation == "relu":  # keep pre-activations away from relu's kink at 0
        for b in net.biases or []:
            b += 0.3
    return net, x, y.astype(dtype)


def _cost(net, x, y, decay):
    penalty = 0.5 * decay * sum(np.sum(w**2) for w in net.weights)
    return float(np.mean(net.cost(net.forward(x)[-1], y))) + penalty


@pytest.mark.parametrize("activation,output,loss", COMBOS)
@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_backprop_matches_finite_differences(activation, output, loss, decay):
    net, x, y = _problem(activation, output, loss)
    grads, _ = net.backprop(x, y)
    for g, w in zip(grads, net.weights):
        g += decay * w  # the L2 term the classifier adds
    eps = 1e-6
    for param, grad in zip(net.params, grads):
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + eps
            up = _cost(net, x, y, decay)
            param[index] = old - eps
            down = _cost(net, x, y, decay)
            param[index] = old
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation,output,loss", COMBOS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows, l2", [(None, 5.0), (1, 0.0), (1, 5.0)],
                         ids=["batch-gemm", "one-sample-ger", "one-sample-gemm-decay"])
def test_fused_sgd_step_equals_backprop_then_update(activation, output, loss, dtype, bias, rows,
                                                    l2):
    fused, x, y = _problem(activation, output, loss, dtype, bias)
    plain, _, _ = _problem(activation, output, loss, dtype, bias)
    x, y = x[:rows], y[:rows]
    decay = weight_decay(OptimConfig(l2=l2), n_train=50, batch_size=len(x))
    sgd_step(fused, x, y, lr=0.3, decay=decay)
    grads, _ = plain.backprop(x, y)
    for g, w in zip(grads, plain.weights):
        g += decay * w
    SGD(plain.params, lr=0.3).update(plain.params, grads)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(fused.params, plain.params):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_fused_step_updates_weights_of_any_memory_layout():
    """BLAS writes through wᵀ; Fortran-ordered weights (a copy for f2py) must still change."""
    fused, x, y = _problem("sigmoid", "softmax", "cross_entropy", "float64", True)
    plain, _, _ = _problem("sigmoid", "softmax", "cross_entropy", "float64", True)
    fused.weights = [np.asfortranarray(w) for w in fused.weights]
    sgd_step(fused, x[::2], y[::2], lr=0.3)  # a strided batch, too
    grads, _ = plain.backprop(x[::2], y[::2])
    SGD(plain.params, lr=0.3).update(plain.params, grads)
    for a, b in zip(fused.params, plain.params):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
