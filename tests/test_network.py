"""The network and its optimizers: a hand-worked step, the blog network's quirk, seeding, fit vs
partial_fit, and update rules equal to scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from digitlab.config import ModelConfig, OptimConfig, TrainerConfig
from digitlab.nn.classifier import Classifier, network_for
from digitlab.nn.functions import sigmoid
from digitlab.nn.network import Network
from digitlab.nn.optimizers import SGD, Adam, sgd_step


def test_hand_worked_step_on_a_2_2_2_network():
    # Matt Mazur's "A Step by Step Backpropagation Example": sigmoid units, E = Σ ½(t − o)², η = 0.5
    w1 = np.array([[0.15, 0.25], [0.20, 0.30]])  # rows: inputs i1, i2; columns: h1, h2
    w2 = np.array([[0.40, 0.50], [0.45, 0.55]])  # rows: h1, h2; columns: o1, o2
    net = Network([w1, w2], [np.array([0.35, 0.35]), np.array([0.60, 0.60])],
                  activation="sigmoid", output="sigmoid", loss="quadratic")
    x, y = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    out = net.forward(x)[-1]
    np.testing.assert_allclose(out, [[0.75136507, 0.772928465]], atol=1e-8)
    assert net.cost(out, y)[0] == pytest.approx(0.298371109, abs=1e-9)
    sgd_step(net, x, y, lr=0.5)
    np.testing.assert_allclose(net.weights[1], [[0.35891648, 0.51130127],
                                                [0.408666186, 0.561370121]], atol=1e-8)
    np.testing.assert_allclose(net.weights[0], [[0.149780716, 0.24975114],
                                                [0.19956143, 0.29950229]], atol=1e-8)


def _seed_blog_update(weights, biases, x, label, lr):
    """One sample of the blog network's loop, copied from the blog (its derivative quirk included)."""
    def sigmoid_derivative(v):
        return sigmoid(v) * (1 - sigmoid(v))

    a = [x]
    for w, b in zip(weights, biases):
        a.append(sigmoid(np.dot(a[-1], w) + b))
    target = np.zeros(a[-1].shape)
    target[label] = 1
    deltas = [(target - a[-1]) * sigmoid_derivative(a[-1])]
    for j in range(len(a) - 2, 0, -1):
        deltas.append(deltas[-1].dot(weights[j].T) * sigmoid_derivative(a[j]))
    deltas.reverse()
    for i in range(len(weights)):
        weights[i] += lr * np.atleast_2d(a[i]).T.dot(np.atleast_2d(deltas[i]))
        biases[i] += lr * deltas[i]


def test_quirk_reproduces_the_seed_blog_updates():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (5, 6)).astype(np.float64)  # raw pixels, as the blog network feeds them
    labels = np.array([0, 2, 1, 2, 0])
    model = ModelConfig(hidden=[4], activation="sigmoid", output="sigmoid", loss="quadratic",
                        init="normal", derivative_quirk=True)
    clf = Classifier(model, OptimConfig(lr=0.2), TrainerConfig(batch_size=1, order="file",
                                                               dtype="float64"), seed=1)
    clf._setup(6, np.arange(3))
    weights = [w.copy() for w in clf.network.weights]
    biases = [b.copy() for b in clf.network.biases]
    clf.partial_fit(x, labels)
    for xi, label in zip(x, labels):
        _seed_blog_update(weights, biases, xi, label, 0.2)
    for ours, theirs in zip(clf.network.params, [*weights, *biases]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    # and the quirk really changes the update (it is not the true derivative)
    plain = Classifier(ModelConfig(**{**model.__dict__, "derivative_quirk": False}),
                       OptimConfig(lr=0.2), TrainerConfig(batch_size=1, order="file",
                                                          dtype="float64"), seed=1)
    plain.partial_fit(x, labels, classes=np.arange(3))
    assert not np.allclose(plain.network.weights[0], clf.network.weights[0])


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x[:300] / 16, y[:300]


@pytest.mark.parametrize("optim", [OptimConfig(), OptimConfig(momentum=0.9, nesterov=True),
                                   OptimConfig(name="adam", lr=1e-3, l2=1e-4, l2_style="sklearn")])
@pytest.mark.parametrize("order", ["shuffle", "random", "file"])
def test_same_seed_same_weights_other_seed_other_weights(optim, order):
    x, y = _digits()
    trainer = TrainerConfig(epochs=2, batch_size=16, order=order)

    def weights(seed):
        clf = Classifier(ModelConfig(hidden=[16, 8]), optim, trainer, seed=seed).fit(x, y)
        return clf.network.params

    first, again, other = weights(5), weights(5), weights(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other))


def test_fit_equals_repeated_partial_fit():
    x, y = _digits()
    args = (ModelConfig(hidden=[20]), OptimConfig(schedule="halving"),
            TrainerConfig(epochs=3, batch_size=10))
    fitted = Classifier(*args, seed=2).fit(x, y)
    stepped = Classifier(*args, seed=2)
    for _ in range(3):
        stepped.partial_fit(x, y, classes=np.arange(10))
    assert stepped.epochs_done == 3 and stepped.optimizer.lr == pytest.approx(0.5 / 4)
    for a, b in zip(fitted.network.params, stepped.network.params):
        np.testing.assert_array_equal(a, b)


def test_exponential_schedule_multiplies_the_rate_by_gamma_each_pass():
    x, y = _digits()
    clf = Classifier(ModelConfig(hidden=[8]), OptimConfig(lr=0.2, schedule="exponential",
                                                         gamma=0.5),
                     TrainerConfig(epochs=1), seed=0)
    rates = []
    for _ in range(3):
        clf.partial_fit(x, y, classes=np.arange(10))
        rates.append(clf.optimizer.lr)
    assert rates == pytest.approx([0.2, 0.1, 0.05])


def test_predict_proba_predict_score_speak_scikit_learn():
    x, y = _digits()
    clf = Classifier(ModelConfig(hidden=[32]), OptimConfig(lr=0.5),
                     TrainerConfig(epochs=5), seed=0).fit(x, y)
    proba = clf.predict_proba(x)
    assert proba.shape == (300, 10) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(clf.predict(x)) <= set(range(10))
    assert clf.score(x, y) == pytest.approx(np.mean(clf.predict(x) == y))
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(x[:3], np.array([0, 1, 12]))


def _params(rng):
    return [rng.standard_normal((4, 3)), rng.standard_normal(3)]


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_equals_scikit_learn(nesterov):
    rng = np.random.default_rng(0)
    ours, theirs = _params(rng), None
    theirs = [p.copy() for p in ours]
    grads = [_params(rng) for _ in range(4)]
    sgd = SGD(ours, lr=0.1, momentum=0.9, nesterov=nesterov)
    reference = SGDOptimizer(theirs, learning_rate_init=0.1, momentum=0.9, nesterov=nesterov)
    for g in grads:
        sgd.update(ours, [x.copy() for x in g])
        reference.update_params(theirs, [x.copy() for x in g])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_adam_equals_scikit_learn():
    rng = np.random.default_rng(1)
    ours = _params(rng)
    theirs = [p.copy() for p in ours]
    adam = Adam(ours, lr=1e-3)
    reference = AdamOptimizer(theirs, learning_rate_init=1e-3)
    for _ in range(5):
        g = _params(rng)
        adam.update(ours, [x.copy() for x in g])
        reference.update_params(theirs, [x.copy() for x in g])
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10)


@pytest.mark.parametrize("init,check", [
    ("normal", lambda w, fan_in: abs(w.std() - 1) < 0.05),
    ("normal_fan_in", lambda w, fan_in: abs(w.std() * np.sqrt(fan_in) - 1) < 0.05),
    ("uniform", lambda w, fan_in: np.abs(w).max() <= 0.25),
    ("glorot_uniform", lambda w, fan_in: np.abs(w).max() <= np.sqrt(2 / (fan_in + 300))),
])
def test_initialisation_schemes(init, check):
    net = network_for(ModelConfig(hidden=[300], init=init), 400, 10,
                      np.random.default_rng(0), "float64")
    assert check(net.weights[0], 400)


def test_zero_output_layer_and_no_biases():
    net = network_for(ModelConfig(hidden=[4], output_init="zero", bias=False), 5, 3,
                      np.random.default_rng(0), "float32")
    assert net.biases is None and not net.weights[1].any() and net.weights[0].any()
    assert net.weights[0].dtype == np.float32
    assert len(net.params) == 2
