"""Published vs reproduced: the reproduced number computed the way the publication computed it
(best or final epoch, test at the best validation epoch, best of N or mean ± sd), the verdict
against the publication's tolerance, and the distance to a published per-epoch curve."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from digitlab.config import PublishedConfig
from digitlab.significance import MeanInterval, mean_interval

CURVES = Path(__file__).resolve().parents[2] / "data" / "published_curves"
# the per-epoch series that each published split is read from
SERIES = {"train": "train_accuracy", "val": "val_accuracy", "test": "epoch_test_accuracy"}


@dataclass(frozen=True)
class TrainingRun:
    """What one logged run contributes: per-epoch accuracies and final metrics (fractions)."""

    seed: int
    history: dict[str, list[float]]  # train_accuracy, val_accuracy, epoch_test_accuracy
    final: dict[str, float]  # test_accuracy, …


@dataclass(frozen=True)
class Reproduction:
    value: float | None  # percent, in the publication's metric (accuracy or error)
    spread: float | None  # sd over runs when the publication reports a mean
    runs: int
    delta: float | None  # reproduced − published, percentage points
    verdict: str
    curve_max: float | None = None  # max and mean |Δ| per epoch against a published curve
    curve_mean: float | None = None
    how: str = ""  # how the runs were summarised: "best of 3", "mean of 3", "mean of 3 runs"
    # the 95 % Student-t interval of the mean of the values averaged (seeds, or bests of groups)
    interval: MeanInterval | None = None


def _last_argmax(values: Sequence[float]) -> int:
    # network3 keeps the latest epoch among equal best validation accuracies (>=)
    values = np.asarray(values, dtype=float)
    return int(np.flatnonzero(values == np.nanmax(values))[-1])


def run_accuracy(published: PublishedConfig, run: TrainingRun) -> float:
    """The run's accuracy (a fraction) as the publication selects it."""
    if published.selection == "test_at_best_val":
        best = _last_argmax(run.history["val_accuracy"])
        return run.history["epoch_test_accuracy"][best]
    series = run.history.get(SERIES[published.split]) or []
    if published.selection == "best":
        if not series:
            raise KeyError(f"no per-epoch {SERIES[published.split]} to pick a best epoch from; "
                           "set trainer.eval_test=true")
        return float(np.nanmax(series))
    if published.split == "test" and "test_accuracy" in run.final:
        return run.final["test_accuracy"]
    return series[-1]


def in_metric(published: PublishedConfig, accuracy: float) -> float:
    """A fraction of correct answers in the publication's unit: accuracy % or error %."""
    return 100 * (1 - accuracy) if published.metric == "error" else 100 * accuracy


def reproduce(published: PublishedConfig, runs: Sequence[TrainingRun],
              curve: Sequence[float] | None = None) -> Reproduction:
    values = [in_metric(published, run_accuracy(published, run))
              for run in sorted(runs, key=lambda r: r.seed)]
    if not values:
        return Reproduction(None, None, 0, None, "no finished run")
    if published.aggregate == "best":
        averaged, how = _best_of(values, published.runs, published.metric)
    else:
        averaged, how = values, f"mean of {len(values)}"
    interval = mean_interval(averaged, bounds=(0.0, 100.0))  # accuracy or error, in %
    value, spread = interval.mean, interval.sd
    curve_max = curve_mean = None
    if curve is not None:
        mine = np.nanmean([[100 * a for a in run.history[SERIES[published.split]]]
                           for run in runs], axis=0)
        gap = np.abs(mine[:len(curve)] - np.asarray(curve[:len(mine)]))
        curve_max, curve_mean = float(gap.max()), float(gap.mean())
    if published.value is None:
        return Reproduction(value, spread, len(values), None, "baseline (no published number)",
                            curve_max, curve_mean, how, interval)
    delta = value - published.value
    if published.rule == "at_most":
        verdict = ("≤ published (recipe reconstructed)" if value <= published.value
                   else "> published (recipe reconstructed)")
    else:
        verdict = ("within tolerance" if abs(delta) <= published.tolerance + 1e-9
                   else "outside tolerance")
    return Reproduction(value, spread, len(values), delta, verdict, curve_max, curve_mean, how,
                        interval)


def _best_of(values: list[float], runs: int, metric: str) -> tuple[list[float], str]:
    """The publication's "best of `runs` runs", from seeds in groups of that many: the best of
    each group, averaged over the groups. A number from one run (runs=1) is thus compared with
    the mean of single runs, not with the luckiest of several seeds."""
    better = min if metric == "error" else max
    size = max(1, runs)
    groups = [values[i:i + size] for i in range(0, len(values) - size + 1, size)] or [values]
    bests = [better(group) for group in groups]
    if len(bests) == 1:
        return bests, f"best of {len(groups[0])}"
    each = "single runs" if size == 1 else f"bests of {size}"
    return bests, f"mean of {len(bests)} {each}"


def load_curve(published: PublishedConfig, root: Path = CURVES) -> list[float] | None:
    """A published per-epoch accuracy curve in percent, or None."""
    if not published.curve:
        return None
    data = json.loads((root / published.curve).read_text())
    if published.curve_key:
        data = data[published.curve_key]
    return [100 * count / published.curve_total for count in data[published.curve_index]]


# ---- Nielsen ch.5: the speed of learning of each hidden layer -----------------------------------

BAND = 0.95  # the prediction interval the published single run is judged against


@dataclass(frozen=True)
class SpeedReproduction:
    means: list[float]  # per hidden layer: ‖∂C/∂bˡ‖ before training, geometric mean of the seeds
    bands: list[tuple[float, float]]  # per hidden layer: the 95 % prediction interval of one run
    runs: int
    verdict: str
    curve_gap: float | None = None  # mean |log10(reproduced mean / published)| over the epochs
    # per hidden layer: the 95 % interval of the geometric mean (Student t on the logarithms)
    intervals: list[tuple[float, float]] = ()


def speed_series(run: TrainingRun, layers: int) -> np.ndarray:
    """A run's ‖∂C/∂bˡ‖ of hidden layers 1…`layers`, one row per epoch from 0."""
    series = [run.history[f"layer{layer}.grad_b_norm"] for layer in range(1, layers + 1)]
    length = min(len(s) for s in series)
    return np.array([s[:length] for s in series], dtype=float).T


def prediction_band(values: Sequence[float]) -> tuple[float, float]:
    """Where one more run falls with 95 % probability, from `values` of independent runs: the
    Student-t prediction interval mean ± t·sd·√(1 + 1/n) of their logarithms, taken back (a
    norm is positive and spreads by factors, so its band is a ratio band that never goes below
    0). Nielsen published one run of an unknown seed, so the question is whether it could be one
    more draw of ours, not whether it equals our mean."""
    from scipy import stats

    logs = np.log(np.asarray(values, dtype=float))
    n = len(logs)
    half = stats.t.ppf(0.5 + BAND / 2, n - 1) * logs.std(ddof=1) * math.sqrt(1 + 1 / n)
    return float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))


def reproduce_speed(published: PublishedConfig, runs: Sequence[TrainingRun],
                    curve: np.ndarray | None = None) -> SpeedReproduction:
    """Each hidden layer's published ‖∂C/∂bˡ‖ before training against the 95 % prediction band
    of the seeds' values; the published per-epoch curves against the seeds' mean."""
    layers = len(published.speed)
    series = [speed_series(run, layers) for run in runs]
    if len(series) < max(2, published.min_seeds):
        return SpeedReproduction([], [], len(series), f"needs ≥ {max(2, published.min_seeds)} "
                                 f"seeds, has {len(series)} (seeds={published.min_seeds})")
    initial = np.array([s[0] for s in series])  # runs × layers
    bands = [prediction_band(initial[:, layer]) for layer in range(layers)]
    outside = [layer + 1 for layer, (value, (low, high)) in enumerate(zip(published.speed, bands))
               if not low <= value <= high]
    verdict = (f"within the {BAND:.0%} band of {len(series)} seeds, every layer" if not outside
               else f"outside the {BAND:.0%} band of {len(series)} seeds: layer "
                    + ", ".join(map(str, outside)))
    gap = None
    if curve is not None:
        length = min(len(curve), *(len(s) for s in series))
        mine = np.mean([s[:length] for s in series], axis=0)
        gap = float(np.mean(np.abs(np.log10(mine / np.asarray(curve)[:length]))))
    means = np.exp(np.log(initial).mean(axis=0)).tolist()  # the centre of the log-scale band
    logs = [mean_interval(np.log(initial[:, layer])) for layer in range(layers)]
    intervals = [(math.exp(i.low), math.exp(i.high)) for i in logs]
    return SpeedReproduction(means, bands, len(series), verdict, gap, intervals)


def load_speed_curve(published: PublishedConfig, root: Path = CURVES) -> np.ndarray | None:
    """Nielsen's per-epoch ‖∂C/∂bˡ‖ of each hidden layer (epochs × layers), or None."""
    if not published.curve:
        return None
    return np.asarray(json.loads((root / published.curve).read_text()), dtype=float)


def format_speed(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.3g}" for v in values)


def format_interval(interval: MeanInterval | None) -> str:
    if interval is None or interval.low is None:
        return "— (one value)"
    return f"{interval.low:.2f}–{interval.high:.2f}"


def published_inside(published: PublishedConfig, rep: Reproduction) -> str:
    """Whether the published number lies in the 95 % interval of the reproduced mean."""
    inside = None if rep.interval is None or published.value is None else \
        rep.interval.contains(published.value)
    return "—" if inside is None else "yes" if inside else "no"


def format_value(rep: Reproduction) -> str:
    if rep.value is None:
        return "—"
    text = f"{rep.value:.2f}"
    if rep.spread is not None and not math.isnan(rep.spread):
        text += f" ± {rep.spread:.2f}"
    return f"{text} ({rep.how})" if rep.runs > 1 else text


# per-epoch metrics that depend on the clock, not on the computation
TIMING = {"epoch_seconds", "train_seconds"}


@dataclass(frozen=True)
class RerunVerdict:
    """What a re-run of a logged run found: `line` to print and the exit code that tells the
    three apart (0 exactly, 3 bit-identical weights with metrics that differ, 1 not)."""

    line: str
    exit_code: int


# where a metric's last bits come from other than the weights: a sum's rounding depends on the
# order and precision it is accumulated in
WHY = {"loss": "a loss is a sum whose last bits depend on how it is accumulated"}


def rerun_verdict(logged: dict[str, list[float]], logged_final: dict[str, float],
                  logged_weights: dict[str, dict[str, np.ndarray]],
                  history: Sequence[dict[str, float]], final: dict[str, float],
                  weights: dict[str, dict[str, np.ndarray]],
                  predictions: tuple[np.ndarray, np.ndarray] | None = None) -> RerunVerdict:
    """A re-run against its logged run, in this order: the final and best weights bit for bit
    (a difference is "NOT reproduced", from the epoch of the first metric to differ, with the
    largest |Δ|), the predictions on the test split (logged, re-run; None where the run kept no
    test set), then every logged metric (timings aside): none differs, "reproduced exactly";
    some do, "reproduced", with how many and by how much."""
    differences = _metric_differences(logged, logged_final, history, final)
    since = (f" from epoch {differences[0][0].split(' at epoch ')[1]} on"
             if differences and " at epoch " in differences[0][0] else "")
    for name in sorted(set(logged_weights) | set(weights)):
        old, new = logged_weights.get(name, {}), weights.get(name, {})
        for array in sorted(set(old) | set(new)):
            if array in old and array in new and old[array].shape == new[array].shape:
                if np.array_equal(old[array], new[array]):
                    continue
                largest = f"largest |Δ| {np.max(np.abs(old[array] - new[array])):.3g}"
            else:
                largest = "its shape differs" if array in old and array in new else "missing"
            first = (f"; the first metric to differ: {differences[0][0]}" if differences else "")
            return RerunVerdict(f"NOT reproduced: the weights differ{since} (weights/{name}.npz "
                                f"{array}: {largest}){first}", 1)
    same = "weights"
    if predictions is not None:
        old, new = predictions
        if old.shape != new.shape or not np.array_equal(old, new):
            moved = (f"{int(np.sum(old != new))} of {len(old)}" if old.shape == new.shape
                     else f"{len(new)} for {len(old)}")
            return RerunVerdict(f"NOT reproduced: the weights are bit-identical, but {moved} "
                                "predictions on the test split differ", 1)
        same = "weights and test predictions"
    if not differences:
        return RerunVerdict(f"reproduced exactly: {same} bit for bit, every metric identical", 0)
    relative = max(_relative(a, b) for _, a, b in differences)
    keys = {where.removeprefix("final ").split(" at epoch")[0] for where, _, _ in differences}
    why = sorted({text for key in keys for part, text in WHY.items() if part in key})
    return RerunVerdict(
        f"reproduced: {same} bit-identical; {len(differences)} logged metric value(s) differ "
        f"by at most {relative:.2g} (relative), the first {differences[0][0]}"
        + (f" ({'; '.join(why)})" if why else ""), 3)


def _metric_differences(logged: dict[str, list[float]], logged_final: dict[str, float],
                        history: Sequence[dict[str, float]], final: dict[str, float]
                        ) -> list[tuple[str, float | None, float | None]]:
    """(where, logged, re-run) of every logged metric value that differs, in epoch order, then
    the final metrics."""
    found = []
    keys = sorted({k for h in history for k in h} | set(logged))
    for epoch in range(1, max(len(history), *(len(v) for v in logged.values()), 0) + 1):
        for key in keys:
            if key in TIMING:
                continue
            old = logged.get(key, [])
            a = old[epoch - 1] if epoch <= len(old) else None
            b = history[epoch - 1].get(key) if epoch <= len(history) else None
            if not _same(a, b):
                found.append((f"{key} at epoch {epoch}", a, b))
    for key in sorted(set(logged_final) | set(final)):
        if key not in TIMING and not _same(logged_final.get(key), final.get(key)):
            found.append((f"final {key}", logged_final.get(key), final.get(key)))
    return found


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


def _relative(a: float | None, b: float | None) -> float:
    """|a − b| over the larger magnitude; a value one side lacks (or NaN) differs wholly."""
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))
