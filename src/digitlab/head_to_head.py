"""Two runs or two configs compared in one paragraph a researcher can paste into a paper: for two
groups of seeds, Welch's t-test with each group's 95 % interval and the seeds 80 % power would
need; for two single runs scored on the same test images, McNemar's exact test of their
per-image correctness."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from digitlab import significance
from digitlab.directions import metric_range


def _interval(summary: significance.MeanInterval) -> str:
    if summary.low is None:
        return "one seed, no interval"
    clipped = " (clipped to the metric's range)" if summary.clipped else ""
    return f"95 % CI {summary.low:.4f}–{summary.high:.4f}{clipped}, sd {summary.sd:.4f}"


def groups_paragraph(name_a: str, values_a: Sequence[float], name_b: str,
                     values_b: Sequence[float], metric: str,
                     alpha: float = significance.ALPHA) -> str:
    """Welch's t-test of two groups' per-seed values of `metric`."""
    bounds = metric_range(metric)
    a = significance.mean_interval(values_a, bounds=bounds)
    b = significance.mean_interval(values_b, bounds=bounds)
    text = (f"{name_a} reached a mean {metric} of {a.mean:.4f} over {a.n} seed(s) "
            f"({_interval(a)}), {name_b} {b.mean:.4f} over {b.n} ({_interval(b)}); "
            f"difference {a.mean - b.mean:+.4f}. ")
    if a.n < 2 or b.n < 2:
        return text + ("A test needs at least two seeds in each group: train more seeds "
                       "(seed=0,1,2), or compare two single runs image by image.")
    p = significance.welch_p(values_a, values_b)
    test = significance.welch(significance.finite(values_a), significance.finite(values_b))
    statistic = (f"t = {test.statistic:.2f}, df = {test.df:.1f}, "
                 if np.isfinite(test.statistic) else "")
    verdict = ("the difference is significant" if p < alpha
               else "the two cannot be told apart")
    budget = significance.seed_budget(values_a, values_b, alpha)
    return text + (f"Welch's two-sided t-test: {statistic}{significance.p_equals(p)}; at "
                   f"α = {alpha:g} {verdict}. Seeds per group for 80 % power at this difference and spread: "
                   f"{budget.text}.")


def runs_paragraph(name_a: str, true: np.ndarray, predicted_a: np.ndarray, name_b: str,
                   predicted_b: np.ndarray, alpha: float = significance.ALPHA) -> str:
    """McNemar's exact test of two runs' predictions on the same test images."""
    correct_a, correct_b = predicted_a == true, predicted_b == true
    result = significance.mcnemar_exact(correct_a, correct_b)
    n = len(true)
    verdict = ("they differ significantly" if result.p < alpha
               else "they cannot be told apart")
    return (f"On the same {n} test images, {name_a} classified {correct_a.mean():.2%} correctly "
            f"and {name_b} {correct_b.mean():.2%}; {result.only_a} images were right for "
            f"{name_a} only and {result.only_b} for {name_b} only ({result.both} right for "
            f"both, {result.neither} for neither). McNemar's exact test on those "
            f"{result.only_a + result.only_b} discordant images: "
            f"{significance.p_equals(result.p)}; at α = {alpha:g} {verdict}.")
