"""The metric runs are ranked by, and which way a metric is better: losses, errors and durations
lower, accuracies higher. Register and compare choose the best run by it."""

from __future__ import annotations

import math

# what compare, register and search rank runs by unless told otherwise: the validation accuracy
# at the run's best epoch (the test set stays out of the choice)
DEFAULT_METRIC = "best_val_accuracy"
# a metric whose name holds one of these is better lower (val_loss, test_error, train_seconds)
LOWER_IS_BETTER = ("loss", "error", "seconds")


def metric_range(metric: str) -> tuple[float, float]:
    """The values `metric` can take: an accuracy lies in [0, 1], a loss, an error or a duration
    is never negative; an interval of its mean never leaves this range."""
    if "accuracy" in metric:
        return 0.0, 1.0
    return (0.0, math.inf) if lower_is_better(metric) else (-math.inf, math.inf)


def lower_is_better(metric: str) -> bool:
    return any(part in metric for part in LOWER_IS_BETTER)


def better(metric: str, value: float, than: float) -> bool:
    """Whether `value` of `metric` beats `than`."""
    return value < than if lower_is_better(metric) else value > than


def best_label(values, metric: str):
    """The index label of the best of a pandas Series of `metric` values (NaN skipped)."""
    return values.idxmin() if lower_is_better(metric) else values.idxmax()
