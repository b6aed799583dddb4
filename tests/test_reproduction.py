"""Published vs reproduced: the selection and aggregation logic on hand-made histories, the
shipped published curves, and reproduce.py on real processes (MNIST through a synthetic
stand-in of the official IDX files, since MNIST cannot be downloaded here)."""

from __future__ import annotations

import pytest

from digitlab.config import PublishedConfig
from digitlab.reproduction import TrainingRun, load_curve, reproduce, run_accuracy


def _run(seed=0, train=(), val=(), test=(), final_test=None):
    return TrainingRun(seed, {"train_accuracy": list(train), "val_accuracy": list(val),
                              "epoch_test_accuracy": list(test)},
                       {} if final_test is None else {"test_accuracy": final_test})


HISTORY = _run(val=[0.90, 0.95, 0.93, 0.95], test=[0.91, 0.96, 0.97, 0.94], final_test=0.94,
               train=[0.8, 0.9, 0.95, 0.99])


@pytest.mark.parametrize("split,selection,expected", [
    ("test", "best", 0.97), ("test", "final", 0.94), ("val", "best", 0.95), ("val", "final", 0.95),
    ("train", "final", 0.99), ("train", "best", 0.99),
    ("test", "test_at_best_val", 0.94),  # val ties at epochs 2 and 4: network3 keeps the later
])
def test_selection(split, selection, expected):
    assert run_accuracy(PublishedConfig(split=split, selection=selection), HISTORY) == expected


def test_best_of_n_and_mean_of_n():
    runs = [_run(seed=s, test=[a], final_test=a) for s, a in enumerate([0.95, 0.96, 0.94])]
    best = reproduce(PublishedConfig(value=95.9, selection="best", aggregate="best", runs=3,
                                     tolerance=0.5), runs)
    assert best.value == pytest.approx(96.0) and best.runs == 3 and best.spread is None
    assert best.delta == pytest.approx(0.1) and best.verdict == "within tolerance"
    assert best.how == "best of 3"
    mean = reproduce(PublishedConfig(value=96.5, selection="final", aggregate="mean",
                                     tolerance=0.5), runs)
    assert mean.value == pytest.approx(95.0) and mean.spread == pytest.approx(1.0)
    assert mean.verdict == "outside tolerance" and mean.delta == pytest.approx(-1.5)


def test_a_number_from_one_run_is_compared_with_the_mean_of_single_runs():
    """Nielsen's 1,000-image curves are one run each: the best of three seeds would be a
    luckier statistic than the one published."""
    runs = [_run(seed=s, test=[a], final_test=a) for s, a in enumerate([0.8300, 0.8246, 0.8236])]
    rep = reproduce(PublishedConfig(value=82.27, selection="best", aggregate="best", runs=1,
                                    tolerance=0.5), runs)
    assert rep.value == pytest.approx(82.6067, abs=1e-3) and rep.how == "mean of 3 single runs"
    assert rep.spread == pytest.approx(0.3443, abs=1e-3) and rep.verdict == "within tolerance"
    six = [_run(seed=s, test=[a], final_test=a)
           for s, a in enumerate([.95, .96, .94, .93, .97, .92])]
    rep = reproduce(PublishedConfig(value=96.0, selection="best", aggregate="best", runs=3), six)
    assert rep.value == pytest.approx(96.5) and rep.how == "mean of 2 bests of 3"


def test_error_rows_and_the_at_most_rule():
    runs = [_run(final_test=0.962), _run(seed=1, final_test=0.958)]
    published = PublishedConfig(value=4.7, metric="error", rule="at_most", selection="final",
                                runs=2)
    rep = reproduce(published, runs)
    assert rep.value == pytest.approx(3.8)  # the best run's error
    assert rep.verdict == "≤ published (recipe reconstructed)"
    worse = reproduce(PublishedConfig(value=3.0, metric="error", rule="at_most"), runs)
    assert worse.verdict == "> published (recipe reconstructed)"


def test_baseline_without_a_published_number():
    rep = reproduce(PublishedConfig(value=None), [_run(final_test=0.9)])
    assert rep.value == pytest.approx(90.0) and rep.delta is None
    assert rep.verdict.startswith("baseline")


def test_curve_distance_per_epoch():
    runs = [_run(test=[0.90, 0.92, 0.94]), _run(seed=1, test=[0.92, 0.94, 0.96])]
    rep = reproduce(PublishedConfig(value=95.0, selection="best"), runs,
                    curve=[91.0, 94.0, 95.0, 99.0])
    assert rep.curve_max == pytest.approx(1.0) and rep.curve_mean == pytest.approx(1 / 3)


@pytest.mark.parametrize("curve,key,best,best_epoch,final", [
    ("nielsen/overfitting.json", None, 82.27, 374, None),
    ("nielsen/overfitting_full.json", None, 95.33, 24, 95.31),
    ("nielsen/regularized_full.json", None, 96.49, 28, 95.61),
    ("nielsen/weight_initialization_30.json", "default_weight_initialization", 96.53, None, None),
    ("nielsen/weight_initialization_100.json", "large_weight_initialization", 97.55, None, None),
])
def test_shipped_curves_hold_the_published_numbers(curve, key, best, best_epoch, final):
    values = load_curve(PublishedConfig(curve=curve, curve_key=key))
    assert max(values) == pytest.approx(best)
    if best_epoch:
        assert values.index(max(values)) == best_epoch  # Nielsen numbers epochs from 0
    if final:
        assert values[-1] == pytest.approx(final)


MNIST_ROWS = ["nielsen-*", "rashid-*", "lecun98-*", "simard03-*", "mnist-*"]


def _speed_run(seed, initial, later=0.01, epochs=3):
    history = {f"layer{layer}.grad_b_norm": [value] + [later] * epochs
               for layer, value in enumerate(initial, start=1)}
    return TrainingRun(seed, history, {})


def test_the_speed_of_learning_is_judged_against_the_95_percent_prediction_band_of_the_seeds():
    import numpy as np
    from scipy import stats

    from digitlab.reproduction import prediction_band, reproduce_speed

    layer1 = [0.060, 0.065, 0.070, 0.058, 0.072]
    runs = [_speed_run(seed, [v, 0.31]) for seed, v in enumerate(layer1)]
    low, high = prediction_band(layer1)
    logs = np.log(layer1)
    n, sd = len(logs), np.std(logs, ddof=1)
    half = stats.t.ppf(0.975, n - 1) * sd * np.sqrt(1 + 1 / n)  # on the log scale
    assert (low, high) == pytest.approx((np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    assert 0 < low < min(layer1) and high > max(layer1)
    assert prediction_band([0.001, 0.004, 0.002, 0.0005, 0.006])[0] > 0  # never below 0
    inside = reproduce_speed(PublishedConfig(speed=[0.07, 0.31], min_seeds=5), runs)
    assert inside.verdict == "within the 95% band of 5 seeds, every layer"
    assert inside.means[0] == pytest.approx(np.exp(logs.mean()))
    outside = reproduce_speed(PublishedConfig(speed=[0.2, 0.31], min_seeds=5), runs)
    assert outside.verdict == "outside the 95% band of 5 seeds: layer 1"
    few = reproduce_speed(PublishedConfig(speed=[0.07, 0.31], min_seeds=5), runs[:3])
    assert few.verdict.startswith("needs ≥ 5 seeds, has 3") and few.means == []


def test_the_speed_curves_gap_is_in_decades_and_the_shipped_curves_open_at_the_books_numbers():
    import numpy as np

    from digitlab.reproduction import load_speed_curve, reproduce_speed

    runs = [_speed_run(seed, [0.1, 0.1], later=0.1) for seed in range(5)]
    curve = np.full((4, 2), 0.01)  # one decade below at every epoch
    rep = reproduce_speed(PublishedConfig(speed=[0.1, 0.1]), runs, curve)
    assert rep.curve_gap == pytest.approx(1.0)
    for layers, book in ((2, [0.07, 0.31]), (3, [0.012, 0.060, 0.283]),
                         (4, [0.003, 0.017, 0.070, 0.285])):
        shipped = load_speed_curve(PublishedConfig(
            curve=f"nielsen/norms_during_training_{layers}_layers.json"))
        assert shipped.shape == (500, layers)
        assert np.round(shipped[0], 3) == pytest.approx(book, abs=0.006)


def test_the_reproduced_mean_carries_its_95_percent_interval_and_whether_the_published_is_in_it():
    from scipy import stats

    from digitlab.reproduction import format_interval, published_inside

    accuracies = [0.95, 0.96, 0.94]
    runs = [_run(seed=s, test=[a], final_test=a) for s, a in enumerate(accuracies)]
    published = PublishedConfig(value=96.5, selection="final", aggregate="mean", tolerance=0.5)
    rep = reproduce(published, runs)
    low, high = stats.t.interval(0.95, 2, loc=95.0, scale=stats.sem([95.0, 96.0, 94.0]))
    assert (rep.interval.low, rep.interval.high) == pytest.approx((low, high))
    assert format_interval(rep.interval) == f"{low:.2f}–{high:.2f}"  # 92.52–97.48
    assert published_inside(published, rep) == "yes"
    far = PublishedConfig(value=99.0, selection="final", aggregate="mean")
    assert published_inside(far, reproduce(far, runs)) == "no"
    one = PublishedConfig(value=96.0, selection="best", aggregate="best", runs=3)
    best = reproduce(one, runs)  # one best of 3: no interval
    assert format_interval(best.interval) == "— (one value)"
    assert published_inside(one, best) == "—"


def test_a_reruns_verdict_tells_bits_from_noise():
    """The three verdicts and their exit codes: exact (0), bit-identical weights and predictions
    with metrics that differ (3), weights or predictions that differ (1); NaN equals NaN, a
    missing epoch differs."""
    import numpy as np

    from digitlab.reproduction import rerun_verdict

    weights = {"final": {"W1": np.arange(4.0)}, "best": {"W1": np.arange(4.0)}}
    logged = {"train_loss": [0.5, 0.25], "val_accuracy": [float("nan"), 0.9]}
    history = [{"train_loss": 0.5, "val_accuracy": float("nan")},
               {"train_loss": 0.25, "val_accuracy": 0.9}]
    final = {"test_loss": 0.3, "train_seconds": 1.0}

    predicted = np.array([3, 1, 4, 1, 5])

    def verdict(history=history, final=final, new_weights=weights, predictions=None):
        return rerun_verdict(logged, {"test_loss": 0.3, "train_seconds": 9.0}, weights,
                             history, final, new_weights, predictions)

    assert verdict().exit_code == 0 and verdict().line.startswith("reproduced exactly: weights bit")
    found = verdict(predictions=(predicted, predicted.copy()))
    assert found.exit_code == 0 and "weights and test predictions bit for bit" in found.line
    found = verdict(predictions=(predicted, predicted + [0, 0, 1, 0, 1]))
    assert found.exit_code == 1 and found.line == (
        "NOT reproduced: the weights are bit-identical, but 2 of 5 predictions on the test "
        "split differ")
    assert verdict(predictions=(predicted, predicted[:4])).exit_code == 1
    noisy = [history[0], {**history[1], "train_loss": 0.25 * (1 + 1e-10)}]
    found = verdict(history=noisy)
    assert found.exit_code == 3 and "1 logged metric value(s) differ by at most 1e-10" in found.line
    assert "the first train_loss at epoch 2" in found.line and "a loss is a sum" in found.line
    assert verdict(history=history[:1]).exit_code == 3  # an epoch the re-run lacks differs
    moved = {**weights, "best": {"W1": np.arange(4.0) + [0, 0, 0.5, 0]}}
    found = verdict(history=noisy, new_weights=moved)
    assert found.exit_code == 1 and found.line.startswith(
        "NOT reproduced: the weights differ from epoch 2 on")
    assert "weights/best.npz W1: largest |Δ| 0.5" in found.line
    assert "the first metric to differ: train_loss at epoch 2" in found.line
