"""One integer seed, independent random streams: the split, the initial weights, the order, and
the probe rows of the per-layer diagnostics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
