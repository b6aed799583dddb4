"""The per-layer diagnostics against a by-hand computation of the four equations on a tiny
network, against finite differences of the cost for ∂C/∂b, and as a run records them."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainerConfig
from digitlab.nn.classifier import Classifier, network_for
from digitlab.nn.network import layer_diagnostics, probe_rows, saturated_share


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _tiny(loss="quadratic"):
    rng = np.random.default_rng(3)
    cfg = ModelConfig(hidden=[3], activation="sigmoid", output="sigmoid", loss=loss,
                      init="normal_fan_in")
    net = network_for(cfg, 2, 2, rng, "float64")
    x = rng.uniform(-1, 1, (5, 2))
    y = np.eye(2)[[0, 1, 1, 0, 1]]
    return net, x, y


def test_gradient_norms_equal_the_four_equations_written_out_sample_by_sample():
    net, x, y = _tiny()
    w1, w2 = net.weights
    b1, b2 = net.biases
    grad_b = [np.zeros(3), np.zeros(2)]
    grad_w = [np.zeros((2, 3)), np.zeros((3, 2))]
    for xi, yi in zip(x, y):  # one sample at a time, as the book writes them
        a1 = _sigmoid(xi @ w1 + b1)
        a2 = _sigmoid(a1 @ w2 + b2)
        d2 = (a2 - yi) * a2 * (1 - a2)  # BP1, quadratic cost: (a − y) ⊙ σ′(z)
        d1 = (w2 @ d2) * a1 * (1 - a1)  # BP2
        grad_b[1] += d2 / len(x)  # BP3
        grad_b[0] += d1 / len(x)
        grad_w[1] += np.outer(a1, d2) / len(x)  # BP4
        grad_w[0] += np.outer(xi, d1) / len(x)
    values = layer_diagnostics(net, x, y)
    for layer in (0, 1):
        name = f"layer{layer + 1}."
        assert values[name + "grad_b_norm"] == pytest.approx(np.linalg.norm(grad_b[layer]))
        assert values[name + "grad_w_norm"] == pytest.approx(np.linalg.norm(grad_w[layer]))
        assert values[name + "weight_norm"] == pytest.approx(np.linalg.norm(net.weights[layer]))
    assert "layer1.update_ratio" not in values  # nothing to compare with yet


@pytest.mark.parametrize("loss", ["quadratic", "binary_ce"])
def test_the_bias_gradient_norm_is_that_of_the_costs_finite_differences(loss):
    net, x, y = _tiny(loss)

    def cost():
        return float(np.mean(net.cost(net.forward(x)[-1], y)))

    values = layer_diagnostics(net, x, y)
    for layer, b in enumerate(net.biases, start=1):
        numeric = np.zeros_like(b)
        for j in range(len(b)):
            b[j] += 1e-6
            up = cost()
            b[j] -= 2e-6
            down = cost()
            b[j] += 1e-6
            numeric[j] = (up - down) / 2e-6
        assert values[f"layer{layer}.grad_b_norm"] == pytest.approx(np.linalg.norm(numeric),
                                                                     rel=1e-6)


def test_the_update_ratio_is_the_change_since_the_last_measurement_over_the_weights_size():
    net, x, y = _tiny()
    before = [w.copy() for w in net.weights]
    net.weights[0] += 0.1
    values = layer_diagnostics(net, x, y, before)
    assert values["layer1.update_ratio"] == pytest.approx(
        np.linalg.norm(np.full((2, 3), 0.1)) / np.linalg.norm(net.weights[0]))
    assert values["layer2.update_ratio"] == 0


def test_saturation_counts_outputs_near_their_bounds_and_relu_units_dead_on_every_row():
    a = np.array([[0.005, 0.5, 0.995], [0.2, 0.999, 0.011]])
    assert saturated_share("sigmoid", a) == pytest.approx(3 / 6)
    assert saturated_share("tanh", np.array([[-0.995, 0.0], [0.98, 1.0]])) == pytest.approx(2 / 4)
    assert saturated_share("relu", np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])) == 1 / 3
    assert saturated_share("softmax", a) is None


def test_probe_rows_are_the_seeds_and_every_row_of_a_small_set():
    assert list(probe_rows(50, np.random.default_rng(0))) == list(range(50))
    first = probe_rows(5000, np.random.default_rng(1))
    assert len(first) == 1000 and len(set(first)) == 1000 and list(first) == sorted(first)
    assert np.array_equal(first, probe_rows(5000, np.random.default_rng(1)))


def test_a_classifier_gives_its_layers_in_one_call_and_diagnostics_leave_training_unchanged():
    from digitlab.runner import load_split
    from digitlab.training import train

    cfg = RunConfig(data=DataConfig(), model=ModelConfig(hidden=[16]),
                    optim=OptimConfig(lr=0.5), trainer=TrainerConfig(epochs=3))
    split = load_split(cfg)
    runs = {}
    for level in ("layers", "off"):
        trainer = TrainerConfig(epochs=3, diagnostics=level)
        clf = Classifier(cfg.model, cfg.optim, trainer, seed=0)
        runs[level] = (list(train(clf, split)), clf.network.state())
    (with_records, with_state), (without_records, without_state) = runs["layers"], runs["off"]
    for key in with_state:
        assert np.array_equal(with_state[key], without_state[key])
    assert without_records[0].layers == {} and without_records[0].layers_before == {}
    assert set(with_records[0].layers_before) == {
        "layer1.grad_b_norm", "layer1.grad_w_norm", "layer1.saturated", "layer1.weight_norm",
        "layer2.grad_b_norm", "layer2.grad_w_norm", "layer2.weight_norm"}  # softmax: no share
    assert "layer1.update_ratio" in with_records[0].layers
    assert "layer1.grad_b_norm" in with_records[2].metrics()
    clf = Classifier(cfg.model, cfg.optim, TrainerConfig(epochs=1), seed=0)
    clf.fit(split.x_train, split.y_train)
    values = clf.layer_diagnostics(split.x_train[:100], split.y_train[:100])
    assert values["layer1.weight_norm"] > 0 and "layer1.update_ratio" not in values
    assert "layer1.update_ratio" in clf.layer_diagnostics(split.x_train[:100],
                                                         split.y_train[:100])


def test_diagnostics_are_not_part_of_a_runs_identity():
    from digitlab.runner import config_hash

    on = RunConfig(trainer=TrainerConfig(diagnostics="layers"))
    off = RunConfig(trainer=TrainerConfig(diagnostics="off"))
    # the identity of the default config, pinned: neither the diagnostics nor the BLAS thread
    # count (config.NOT_TRAINED_BY) is part of it
    assert config_hash(on, "abc") == config_hash(off, "abc") == "212b66ecdc7cc678"
    threads = RunConfig(trainer=TrainerConfig(blas_threads=2))
    cached = RunConfig(data=DataConfig(cache_dir="/elsewhere"))
    assert config_hash(threads, "abc") == config_hash(cached, "abc") == config_hash(on, "abc")
