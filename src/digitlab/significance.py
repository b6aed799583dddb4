"""Which differences are real: the Student-t interval of a mean over seeds, Welch's t-test of
each config against the best with Holm's correction across the configs compared, the seeds per
config that would separate two configs at 80 % power, and McNemar's exact test of two runs'
per-image correctness. scipy.stats and statsmodels compute every figure; this module only says
which test answers which question."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

LEVEL = 0.95  # the confidence level of every interval
ALPHA = 0.05  # the family-wise error rate the verdicts are taken at (compare.py alpha=)
POWER = 0.80  # the seed budget's chance of telling two configs apart when they differ as seen
MAX_SEEDS = 100  # beyond this many seeds per config a difference is called noise

BEST = "best"
NOT_DISTINGUISHABLE = "not distinguishable from best"
WORSE = "worse"
UNTESTED = "untested (one seed)"
SAME_EVERY_SEED = "the same on every seed (no spread: no test)"
WORSE_EVERY_SEED = "worse on every seed (no spread: no test)"
NO_VALUE = "no value"  # the config's runs did not log the metric (validation off, another dataset)


def format_p(value: float) -> str:
    """A p-value as a paper prints it: three decimals, or < 0.001; — when untested."""
    if math.isnan(value):
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def p_equals(value: float) -> str:
    """A p-value in a sentence: p = 0.042, p < 0.001."""
    text = format_p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


@dataclass(frozen=True)
class MeanInterval:
    """A sample of per-seed values: n, mean, sd and the Student-t interval of the mean (None
    with one value: no spread to scale it by); `clipped`: the interval reached past the values
    the metric can take and stops at their bound."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None
    clipped: bool = False

    def contains(self, value: float) -> bool | None:
        return None if self.low is None else self.low <= value <= self.high


# MLflow's SQL stores keep ±inf as ±1.7976931348623157e308, the largest double
STORED_INFINITY = np.finfo(float).max


def finite(values: Sequence[float]) -> np.ndarray:
    """The values a statistic uses: neither NaN nor ±inf, as logged or as a SQL store gives
    them back."""
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array) & (np.abs(array) < STORED_INFINITY)]


def mean_interval(values: Sequence[float], level: float = LEVEL,
                  bounds: tuple[float, float] = (-math.inf, math.inf)) -> MeanInterval:
    """mean ± t(level, n−1)·sd/√n: where the mean over infinitely many seeds lies, at `level`;
    clipped to `bounds`, the values the metric can take (with two or three seeds the t interval
    of an accuracy near 1 reaches past 1, where no mean can lie)."""
    from scipy import stats

    sample = finite(values)
    n = len(sample)
    if n == 0:
        return MeanInterval(0, math.nan, None, None, None)
    mean = float(sample.mean())
    if n == 1:
        return MeanInterval(1, mean, None, None, None)
    sd = float(sample.std(ddof=1))
    if sd == 0:  # every seed gave the same value: the interval is that value
        return MeanInterval(n, mean, 0.0, mean, mean)
    low, high = stats.t.interval(level, n - 1, loc=mean, scale=stats.sem(sample))
    clipped = low < bounds[0] or high > bounds[1]
    return MeanInterval(n, mean, sd, float(max(low, bounds[0])), float(min(high, bounds[1])),
                        clipped)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch's t-test (unequal variances) of two configs' per-seed values; NaN when
    either has fewer than two values or neither varies."""
    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if a.std() == 0 and b.std() == 0:  # no spread at all: no test (against_best says so)
        return math.nan
    return float(welch(a, b).pvalue)


def welch(a: np.ndarray, b: np.ndarray):
    """scipy's Welch's t-test, without its warning on seeds whose values are nearly identical
    (a common case: two seeds that classify the same validation images right); the statistic
    and p it returns are still the test's."""
    import warnings

    from scipy import stats

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        return stats.ttest_ind(a, b, equal_var=False)


def holm(pvalues: Sequence[float], alpha: float = ALPHA) -> np.ndarray:
    """Holm's step-down adjustment of the p-values that are numbers; NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.isfinite(p)
    if tested.any():
        adjusted[tested] = multipletests(p[tested], alpha=alpha, method="holm")[1]
    return adjusted


@dataclass(frozen=True)
class Verdicts:
    """Each config against the best one (index `best`): raw and Holm-adjusted p, verdict."""

    best: int
    p: np.ndarray
    p_holm: np.ndarray
    verdicts: list[str]


def against_best(samples: Sequence[Sequence[float]], lower_is_better: bool = False,
                 alpha: float = ALPHA) -> Verdicts:
    """The config with the best mean is `best`; each other one is `worse` when Welch's test
    against it, Holm-adjusted over all the others, is below `alpha`, else `not distinguishable
    from best`; a config with one seed, or a best with one seed, is untested; one without any
    value has none (best is -1 where no config has one)."""
    means = np.array([finite(s).mean() if len(finite(s)) else np.nan for s in samples])
    if np.isnan(means).all():
        none = np.full(len(samples), np.nan)
        return Verdicts(-1, none, none, [NO_VALUE] * len(samples))
    best = int(np.nanargmin(means) if lower_is_better else np.nanargmax(means))
    p = np.array([math.nan if i == best else welch_p(samples[best], s)
                  for i, s in enumerate(samples)])
    adjusted = holm(p, alpha)
    verdicts = [BEST if i == best else NO_VALUE if math.isnan(means[i])
                else _without_spread(samples[best], samples[i]) or UNTESTED
                if math.isnan(adjusted[i])
                else WORSE if adjusted[i] < alpha else NOT_DISTINGUISHABLE
                for i in range(len(samples))]
    return Verdicts(best, p, adjusted, verdicts)


def _without_spread(best: Sequence[float], other: Sequence[float]) -> str | None:
    """The verdict of two configs whose seeds all give one value each (≥ 2 seeds): no test
    applies, the values say it all."""
    best, other = finite(best), finite(other)
    if len(best) < 2 or len(other) < 2 or best.std() or other.std():
        return None
    return SAME_EVERY_SEED if best[0] == other[0] else WORSE_EVERY_SEED


@dataclass(frozen=True)
class SeedBudget:
    """Seeds per config that would separate two configs at POWER (None: more than MAX_SEEDS,
    or not estimable) and the sentence that says so."""

    seeds: int | None
    effect_size: float | None  # Cohen's d: the difference over the pooled sd
    text: str


def seed_budget(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA,
                power: float = POWER) -> SeedBudget:
    """How many seeds per config a two-sided two-sample t-test at `alpha` needs to detect the
    observed difference of means with probability `power`, the spread taken as observed
    (statsmodels' TTestIndPower, equal group sizes)."""
    from statsmodels.stats.power import TTestIndPower

    a, b = finite(a), finite(b)
    if len(a) < 2 or len(b) < 2:
        return SeedBudget(None, None, "needs ≥ 2 seeds in each config to estimate the spread")
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    difference = abs(a.mean() - b.mean())
    if pooled == 0:
        return SeedBudget(None, None, "no spread between seeds: every seed gives the same "
                          + ("value to both" if difference == 0 else "difference"))
    d = difference / pooled
    analysis = TTestIndPower()
    if d == 0 or analysis.power(d, MAX_SEEDS, alpha) < power:
        return SeedBudget(None, d, f"more than {MAX_SEEDS} seeds per config: the difference "
                                   "is within noise")
    # the least whole number of seeds that reaches `power` (TTestIndPower.solve_power gives the
    # same number rounded up, but finds no root below two seeds per config)
    seeds = next(n for n in range(2, MAX_SEEDS + 1) if analysis.power(d, n, alpha) >= power)
    return SeedBudget(seeds, d, f"{seeds} seeds per config")


@dataclass(frozen=True)
class McNemar:
    """Two classifiers on the same images: how many each alone got right, and the exact
    (binomial) McNemar p-value of that split."""

    both: int
    only_a: int
    only_b: int
    neither: int
    p: float


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"the two runs scored {len(a)} and {len(b)} images: McNemar's test "
                         "needs the same images")
    counts = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    p = float(mcnemar(counts, exact=True).pvalue)
    return McNemar(counts[0][0], counts[0][1], counts[1][0], counts[1][1], p)
