"""The blog network's training loop, kept verbatim in spirit as the batch-1 reference (../shared/seeds/):
float64, N(0,1) weights and biases, sigmoid everywhere, the quadratic-cost error (label − a),
σ' applied to the activation (the blog network's derivative quirk), one sample per update in file order,
and the update written as `weights += lr * layer.T.dot(delta)` (a fresh 784×784 outer product
per sample). Used only by bench_training.py; never imported by digitlab."""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(x):
    return sigmoid(x) * (1 - sigmoid(x))


class BlogNetwork:
    def __init__(self, layers, seed=0):
        np.random.seed(seed)
        self.weights, self.bias = [], []
        for i in range(1, len(layers)):  # N(0,1) initialisation
            self.weights.append(np.random.randn(layers[i - 1], layers[i]))
            self.bias.append(np.random.randn(layers[i]))
        self.activation, self.activation_deriv = sigmoid, sigmoid_derivative

    def fit(self, x, y, learning_rate=0.1, samples=None):
        """`samples` updates, sample k being x[k % n] (the blog network runs epochs × n of them)."""
        x, y = np.array(x), np.array(y)
        n = len(x)
        for k in range(n if samples is None else samples):
            a = [x[k % n]]
            for lay in range(len(self.weights)):
                a.append(self.activation(np.dot(a[lay], self.weights[lay]) + self.bias[lay]))
            label = np.zeros(a[-1].shape)
            label[y[k % n]] = 1
            error = label - a[-1]
            deltas = [error * self.activation_deriv(a[-1])]
            layer_num = len(a) - 2
            for j in range(layer_num, 0, -1):
                deltas.append(deltas[-1].dot(self.weights[j].T) * self.activation_deriv(a[j]))
            deltas.reverse()
            for i in range(len(self.weights)):
                layer = np.atleast_2d(a[i])
                delta = np.atleast_2d(deltas[i])
                self.weights[i] += learning_rate * layer.T.dot(delta)
                self.bias[i] += learning_rate * deltas[i]
        return self

    def predict(self, x):
        a = np.asarray(x, dtype=np.float64)
        for w, b in zip(self.weights, self.bias):
            a = self.activation(a @ w + b)
        return a.argmax(axis=1)
