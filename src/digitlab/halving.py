"""Successive halving over a grid (`train.py -m … hydra.sweeper.prune=halving`): every config
trains to the first rung, min_epochs; the best 1/η of them (by the mean of their seeds' score at
that epoch) go on to min_epochs·η, and so on up to the sweep's trainer.epochs. The sweeper
launches the rungs; each run goes on from its own training state (runner.run's `until`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from digitlab.config import ConfigError
from digitlab.directions import lower_is_better

# what a rung ranks configs by, from the runs' per-epoch values up to the rung's epoch:
# the per-epoch metric it is read from, and whether the best epoch so far counts (else the last)
RUNG_METRICS = {"best_val_accuracy": ("val_accuracy", True), "val_accuracy": ("val_accuracy", False),
                "val_loss": ("val_loss", False)}
PRUNE = ("none", "halving")


@dataclass(frozen=True)
class Halving:
    eta: int = 3  # the fraction 1/η of the configs that goes on from each rung
    min_epochs: int = 1  # the first rung
    metric: str = "best_val_accuracy"

    def rungs(self, max_epochs: int) -> list[int]:
        """The epochs each rung trains to: min_epochs·ηᵏ below max_epochs, then max_epochs."""
        rungs, epochs = [], self.min_epochs
        while epochs < max_epochs:
            rungs.append(epochs)
            epochs *= self.eta
        return [*rungs, max_epochs]

    def keep(self, configs: int) -> int:
        """How many of `configs` go on to the next rung."""
        return max(1, configs // self.eta)

    def launches(self, configs: int, seeds: int, max_epochs: int) -> int:
        """The jobs the sweep launches when no config fails: each rung's configs × their seeds."""
        total = 0
        for _ in self.rungs(max_epochs):
            total, configs = total + configs * seeds, self.keep(configs)
        return total

    def value(self, per_epoch: list[float], epochs: int) -> float:
        """A run's score at the rung that ends at `epochs` (NaN when it logged none)."""
        values = [v for v in per_epoch[:epochs] if math.isfinite(v)]
        if not values:
            return math.nan
        _, best_so_far = RUNG_METRICS[self.metric]
        if not best_so_far:
            return values[-1]
        return min(values) if lower_is_better(self.metric) else max(values)

    def survivors(self, scores: dict[str, float]) -> list[str]:
        """The configs that go on, best first: the top 1/η by score; a config without a score
        (its runs failed) counts as worst and never goes on."""
        scored = [c for c in scores if math.isfinite(scores[c])]
        sign = 1 if lower_is_better(self.metric) else -1
        return sorted(scored, key=lambda c: sign * scores[c])[:self.keep(len(scores))]


def check(prune: str, halving: Halving, max_epochs: set[int], sweeping: bool, tracked: bool,
          reused: bool, has_val: bool) -> None:
    """The sweeper's prune keys against the sweep they would prune: one line naming the key."""
    if prune not in PRUNE:
        raise ConfigError(f"hydra.sweeper.prune={prune}: use one of {', '.join(PRUNE)}")
    if prune == "none":
        return
    where = f"hydra.sweeper.prune={prune}"
    if not sweeping:
        raise ConfigError(f"{where}: stops the worse configs of a sweep; add -m and the values "
                          "to sweep (train.py -m model.hidden=16,64,256 …)")
    if not isinstance(halving.eta, int) or halving.eta < 2:
        raise ConfigError(f"hydra.sweeper.prune_eta={halving.eta}: give an integer ≥ 2 (each "
                          "rung keeps the best 1/η of the configs)")
    if len(max_epochs) != 1:
        raise ConfigError(f"trainer.epochs={','.join(map(str, sorted(max_epochs)))}: with {where} "
                          "trainer.epochs is the one budget every config may reach; give one value")
    epochs = max_epochs.pop()
    if not isinstance(halving.min_epochs, int) or not 1 <= halving.min_epochs < epochs:
        raise ConfigError(f"hydra.sweeper.prune_min_epochs={halving.min_epochs}: give an integer "
                          f"≥ 1 and below trainer.epochs={epochs} (the first rung)")
    if halving.metric not in RUNG_METRICS:
        raise ConfigError(f"hydra.sweeper.prune_metric={halving.metric}: use one of "
                          f"{', '.join(RUNG_METRICS)} (a rung ranks the validation scores)")
    if not has_val:
        raise ConfigError(f"hydra.sweeper.prune_metric={halving.metric}: the runs log no "
                          "validation score (data.val_mode=none); give data.val_mode=stratified")
    if not tracked:
        raise ConfigError(f"{where}: the runs that go on continue from their state in the "
                          "store, and tracking=off keeps none; leave tracking on")
    if not reused:
        raise ConfigError(f"tracking.skip_finished=false: with {where} each rung goes on with "
                          "the runs the rung before left; leave tracking.skip_finished=true")
