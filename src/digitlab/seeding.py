"""One integer seed, three independent random streams: the split, the initial weights, the order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Streams:
    split: np.random.Generator
    init: np.random.Generator
    order: np.random.Generator


def seed_streams(seed: int) -> Streams:
    # spawn() gives statistically independent children: changing how many draws the split makes
    # never shifts the initial weights or the sample order
    split, init, order = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    return Streams(split=split, init=init, order=order)
