"""The random draws a network starts with and makes each pass, looked up by the config's names:
initial weights and biases, and the row order of a pass; and the independent streams one integer
seed gives (the split, the initial weights, the order, the probe rows of the diagnostics).

Each weight scheme takes (fan_in, fan_out, rng, activation, scale) and returns W of shape
(fan_in, fan_out) and b of shape (fan_out,); `scale` is r of the uniform scheme."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Init = Callable[[int, int, np.random.Generator, str, float], tuple[np.ndarray, np.ndarray]]


def _glorot(fan_in: int, fan_out: int, rng: np.random.Generator, activation: str, scale: float):
    # scikit-learn's MLP init: U(±√(k/(fan_in+fan_out))), k = 2 for sigmoid units, else 6
    bound = np.sqrt((2.0 if activation == "sigmoid" else 6.0) / (fan_in + fan_out))
    return rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)


INITS: dict[str, Init] = {
    # N(0, 1) weights and biases: the blog network, Nielsen ch.1 ("large" init in ch.3)
    "normal": lambda i, o, rng, f, r: (rng.standard_normal((i, o)), rng.standard_normal(o)),
    # N(0, 1/fan_in) weights, N(0, 1) biases: Nielsen ch.3's default, Rashid (no biases)
    "normal_fan_in": lambda i, o, rng, f, r: (rng.normal(0, 1 / np.sqrt(i), (i, o)),
                                              rng.standard_normal(o)),
    # N(0, 1/fan_out) weights, N(0, 1) biases: Nielsen ch.6's network3 hidden layers
    "normal_fan_out": lambda i, o, rng, f, r: (rng.normal(0, 1 / np.sqrt(o), (i, o)),
                                               rng.standard_normal(o)),
    "glorot_uniform": _glorot,
    # U(±r) weights and biases: rolisz's network
    "uniform": lambda i, o, rng, f, r: (rng.uniform(-r, r, (i, o)), rng.uniform(-r, r, o)),
}


# each gives the row indices of a pass over n rows; None = file order, taken as contiguous
# slices (no gather copy)
ORDERS = {
    "shuffle": lambda n, rng: rng.permutation(n),
    "file": lambda n, rng: None,
    "random": lambda n, rng: rng.integers(0, n, n),  # uniform draws with replacement (rolisz)
}


@dataclass(frozen=True)
class Streams:
    split: np.random.Generator
    init: np.random.Generator
    order: np.random.Generator
    probe: np.random.Generator  # the diagnostics' probe rows: drawing them changes no other stream


def seed_streams(seed: int) -> Streams:
    # spawn() gives statistically independent children: changing how many draws the split makes
    # never shifts the initial weights or the sample order
    # (a child's stream depends on its index only, so a fourth child leaves the first three as
    # they were)
    split, init, order, probe = (np.random.default_rng(s)
                                 for s in np.random.SeedSequence(seed).spawn(4))
    return Streams(split=split, init=init, order=order, probe=probe)
