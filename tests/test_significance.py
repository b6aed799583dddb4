"""digitlab.significance and digitlab.config_groups: every statistic against scipy.stats and
statsmodels on fixed numbers, and against values known from the textbooks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from digitlab import config_groups, significance


def test_the_interval_of_a_mean_is_students_t():
    # 2 ± t(0.975, 2)·1/√3 = 2 ± 4.302653·0.577350
    interval = significance.mean_interval([1.0, 2.0, 3.0])
    assert (interval.n, interval.mean, interval.sd) == (3, 2.0, 1.0)
    assert (interval.low, interval.high) == pytest.approx((-0.484138, 4.484138), abs=1e-6)
    values = [0.9722, 0.9861, 0.9792, 0.9653]
    low, high = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    got = significance.mean_interval(values)
    assert (got.low, got.high) == pytest.approx((low, high), rel=1e-12)
    one = significance.mean_interval([0.9])
    assert (one.n, one.mean, one.sd, one.low, one.high) == (1, 0.9, None, None, None)
    same = significance.mean_interval([0.5, 0.5])
    assert (same.low, same.high) == (0.5, 0.5)
    assert significance.mean_interval([0.5, float("nan"), 0.7]).n == 2


def test_an_interval_never_leaves_the_values_its_metric_can_take():
    """Two seeds near 1: Student's t reaches past 1, where no accuracy lies; the interval stops
    at the bound and says so, in the table, its Markdown, its notes and the paragraph."""
    from digitlab.directions import metric_range
    from digitlab.head_to_head import groups_paragraph

    assert metric_range("best_val_accuracy") == (0.0, 1.0)
    assert metric_range("val_loss") == (0.0, math.inf)
    near_one = [0.9444, 0.9861]
    raw = significance.mean_interval(near_one)
    assert raw.high > 1 and not raw.clipped  # as Student's t has it: 0.7003–1.2302
    bounded = significance.mean_interval(near_one, bounds=(0.0, 1.0))
    assert (bounded.low, bounded.high, bounded.clipped) == (raw.low, 1.0, True)
    losses = significance.mean_interval([0.01, 0.3], bounds=metric_range("val_loss"))
    assert losses.low == 0.0 and losses.clipped and losses.high == raw_high([0.01, 0.3])
    inside = significance.mean_interval([0.90, 0.91, 0.905], bounds=(0.0, 1.0))
    assert not inside.clipped

    runs = _runs([{"params.model.hidden": h, "params.seed": str(s), "params.data.name": "digits",
                   "metrics.best_val_accuracy": v, "metrics.test_accuracy": v}
                  for h, vs in {"16": near_one, "8": [0.90, 0.91]}.items()
                  for s, v in enumerate(vs)])
    groups = config_groups.group(runs)
    table = groups.table
    assert table["best_val_accuracy_ci_high"].max() <= 1.0
    assert table["best_val_accuracy_ci_clipped"].tolist() == [True, False]
    shown = config_groups.readable(groups)
    assert shown.loc[0, "best_val_accuracy 95 % CI"].endswith("1.0000 *")
    assert not shown.loc[1, "best_val_accuracy 95 % CI"].endswith("*")
    assert "clipped to the values each metric can take ([0, 1] for an accuracy" in (
        config_groups.notes(groups)[0])
    paragraph = groups_paragraph("a", near_one, "b", [0.90, 0.91], "best_val_accuracy")
    assert "1.0000 (clipped to the metric's range)" in paragraph and "1.2" not in paragraph


def raw_high(values):
    return significance.mean_interval(values).high


def test_a_p_value_reads_as_a_paper_prints_it():
    assert [significance.p_equals(p) for p in (0.0004, 0.042, math.nan)] == [
        "p < 0.001", "p = 0.042", "p = —"]


def test_welch_is_scipys_unequal_variance_test():
    assert significance.welch_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.0213116, abs=1e-6)
    a, b = [0.97, 0.98, 0.975, 0.99], [0.96, 0.965, 0.962]
    assert significance.welch_p(a, b) == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    assert math.isnan(significance.welch_p([0.9], [0.8, 0.85]))
    assert math.isnan(significance.welch_p([0.9, 0.9], [0.9, 0.9]))  # no spread: no test


def test_configs_without_spread_are_told_apart_by_their_values_not_by_a_test():
    """Seeds that all give one value: no p-value is made up; the verdict says what the values
    say, and the seed budget does not call a zero difference exact."""
    found = significance.against_best([[0.9, 0.9], [0.8, 0.8], [0.9, 0.9], [0.7, 0.75]])
    assert found.verdicts[:3] == ["best", significance.WORSE_EVERY_SEED,
                                  significance.SAME_EVERY_SEED]
    assert math.isnan(found.p[1]) and math.isnan(found.p[2])
    assert found.verdicts[3] in (significance.WORSE, significance.NOT_DISTINGUISHABLE)
    assert "same value to both" in significance.seed_budget([0.9, 0.9], [0.9, 0.9]).text
    assert "same difference" in significance.seed_budget([0.9, 0.9], [0.8, 0.8]).text


def test_holm_is_statsmodels_and_leaves_untested_configs_out():
    from statsmodels.stats.multitest import multipletests

    # by hand: 0.01·3 = 0.03; 0.03·2 = 0.06; 0.04·1 → 0.06 (step-down keeps it monotone)
    assert significance.holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    p = [0.002, 0.2, float("nan"), 0.03]
    adjusted = significance.holm(p)
    assert math.isnan(adjusted[2])
    expected = multipletests([0.002, 0.2, 0.03], method="holm")[1]
    assert adjusted[[0, 1, 3]].tolist() == pytest.approx(expected.tolist())


def test_verdicts_against_the_best_config():
    samples = [[0.90, 0.91, 0.905], [0.97, 0.98, 0.975], [0.972, 0.968, 0.979], [0.95]]
    verdicts = significance.against_best(samples)
    assert verdicts.best == 1
    raw = [stats.ttest_ind(samples[1], samples[i], equal_var=False).pvalue for i in (0, 2)]
    from statsmodels.stats.multitest import multipletests

    assert [verdicts.p_holm[0], verdicts.p_holm[2]] == pytest.approx(
        multipletests(raw, method="holm")[1].tolist())
    assert verdicts.verdicts == ["worse", "best", "not distinguishable from best",
                                 "untested (one seed)"]
    losses = significance.against_best([[0.3, 0.31], [0.1, 0.12]], lower_is_better=True)
    assert losses.best == 1 and losses.verdicts[1] == "best"


def test_the_seed_budget_is_statsmodels_power_analysis():
    from statsmodels.stats.power import TTestIndPower

    # d = 1 at α = 0.05 and 80 % power: 16.71 → 17 per group, the textbook figure
    a = [1.0, 2.0, 3.0]
    b = [2.0, 3.0, 4.0]  # Δ = 1, pooled sd = 1
    budget = significance.seed_budget(a, b)
    assert budget.effect_size == pytest.approx(1.0) and budget.seeds == 17
    assert budget.text == "17 seeds per config"
    a, b = [0.97, 0.98, 0.975], [0.95, 0.96, 0.958]
    d = (np.mean(a) - np.mean(b)) / math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    n = TTestIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8)
    assert significance.seed_budget(a, b).seeds == max(2, math.ceil(n))
    noise = significance.seed_budget([0.90, 0.95, 0.92], [0.91, 0.94, 0.925])
    assert noise.seeds is None and noise.text.startswith("more than 100 seeds per config")
    assert significance.seed_budget([0.9], [0.8, 0.7]).seeds is None


def test_mcnemars_exact_test_is_the_binomial_on_the_discordant_images():
    correct_a = np.array([True] * 50 + [True] * 10 + [False] * 2 + [False] * 3)
    correct_b = np.array([True] * 50 + [False] * 10 + [True] * 2 + [False] * 3)
    result = significance.mcnemar_exact(correct_a, correct_b)
    assert (result.both, result.only_a, result.only_b, result.neither) == (50, 10, 2, 3)
    # 2·P(X ≤ 2 | n = 12, ½) = 2·(1 + 12 + 66)/4096
    assert result.p == pytest.approx(158 / 4096)
    assert result.p == pytest.approx(stats.binomtest(2, 12, 0.5).pvalue)
    with pytest.raises(ValueError, match="same images"):
        significance.mcnemar_exact([True], [True, False])


def _runs(rows):
    return pd.DataFrame([{"status": "FINISHED", "run_id": f"r{i}", **row}
                         for i, row in enumerate(rows)])


def test_config_groups_have_intervals_verdicts_and_a_budget():
    values = {"8": [0.90, 0.91, 0.905], "16": [0.97, 0.98, 0.975], "32": [0.972, 0.968, 0.979]}
    runs = _runs([{"params.model.hidden": h, "params.seed": str(s), "params.data.name": "digits",
                   "metrics.best_val_accuracy": v, "metrics.test_accuracy": v - 0.01,
                   "metrics.best_epoch": 14.0 + s}
                  for h, vs in values.items() for s, v in enumerate(vs)])
    groups = config_groups.group(runs)
    table = groups.table
    assert table["config"].tolist() == ["hidden=16", "hidden=32", "hidden=8"]
    assert table["verdict"].tolist() == ["best", "not distinguishable from best", "worse"]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(values["16"]),
                                 scale=stats.sem(values["16"]))
    assert (table.loc[0, "best_val_accuracy_ci_low"], table.loc[0, "best_val_accuracy_ci_high"]
            ) == pytest.approx((low, high))
    assert {"best_val_accuracy_ci_low", "best_val_accuracy_ci_high", "p_vs_best",
            "p_vs_best_holm", "verdict", "test_accuracy_ci_low", "n"} <= set(table.columns)
    [budget] = groups.budgets
    assert (budget.best, budget.rival) == ("hidden=16", "hidden=32")
    shown = config_groups.readable(groups)
    assert shown.loc[0, "best_epoch"] == "15.0 ± 1.0"  # epochs with one decimal, not 15.0000
    assert any("Holm" in line for line in config_groups.notes(groups))
    assert "clipped" not in config_groups.notes(groups)[0]  # no interval reached past 1


def test_runs_of_different_datasets_are_never_pooled():
    runs = _runs([{"params.model.hidden": "16", "params.seed": str(s), "params.data.name": d,
                   "metrics.best_val_accuracy": v}
                  for d, vs in (("digits", [0.97, 0.98]), ("mnist", [0.95, 0.96]))
                  for s, v in enumerate(vs)])
    table = config_groups.group(runs).table
    assert table["dataset"].tolist() == ["digits", "mnist"]
    assert table["n"].tolist() == [2, 2] and table["verdict"].tolist() == ["best", "best"]
    assert "dataset" in config_groups.readable(config_groups.group(runs)).columns


def test_one_seed_has_no_interval_and_the_table_says_so():
    runs = _runs([{"params.model.hidden": h, "params.seed": "0", "metrics.test_accuracy": v}
                  for h, v in (("8", 0.9), ("16", 0.95))])
    groups = config_groups.group(runs, "test_accuracy")
    shown = config_groups.readable(groups)
    assert shown["test_accuracy 95 % CI"].tolist() == ["— (one seed)"] * 2
    assert shown["verdict"].tolist() == ["best", "untested (one seed)"]
    assert any("one seed" in line for line in config_groups.notes(groups))


def test_a_reproduce_sweep_is_grouped_by_its_experiment_file():
    runs = _runs([{"params.experiment_id": e, "params.published.recipe": r,
                   "params.model.hidden": h, "params.seed": str(s),
                   "metrics.test_accuracy": 0.9 + 0.01 * s}
                  for e, r, h in (("a", "784-30-10 long recipe", "30"), ("b", "784-100", "100"))
                  for s in range(2)])
    assert config_groups.config_params(runs) == ["experiment_id"]
    assert config_groups.config_labels(runs).tolist() == ["experiment_id=a"] * 2 + \
        ["experiment_id=b"] * 2


def test_configs_rank_by_the_metrics_direction_lowest_loss_first():
    runs = _runs([{"params.model.hidden": h, "params.seed": s, "metrics.test_loss": loss,
                   "metrics.test_accuracy": acc}
                  for h, s, loss, acc in (("8", "0", 0.9, 0.5), ("8", "1", 0.7, 0.6),
                                          ("16", "0", 0.2, 0.9), ("16", "1", 0.4, 0.8))])
    assert config_groups.group(runs, "test_loss").table["model.hidden"].tolist() == ["16", "8"]
    assert config_groups.group(runs, "test_accuracy").table["model.hidden"].tolist() == ["16", "8"]
    runs["metrics.test_loss"] = [0.1, 0.2, 0.8, 0.9]
    assert config_groups.group(runs, "test_loss").table["model.hidden"].tolist() == ["8", "16"]


def test_each_run_identity_counts_once():
    """A bit-identical rerun, or a config two sweeps trained at once, is the same identity: it
    is not another seed (n and the interval are those of the distinct runs)."""
    rows = [{"params.model.hidden": "8", "params.seed": str(s), "params.data.name": "digits",
             "metrics.best_val_accuracy": v, "tags.digitlab.config_hash": f"h{s}"}
            for s, v in enumerate([0.90, 0.92])]
    runs = _runs(rows + [rows[0], rows[1], {**rows[0], "tags.digitlab.config_hash": None}])
    [row] = config_groups.group(runs).table.to_dict("records")
    assert row["n"] == 3  # h0 and h1 once each, and the run without an identity


def test_a_config_without_the_metric_is_shown_as_such_not_as_one_seed():
    """A val_mode=none sweep beside a digits sweep: its configs have no best_val_accuracy."""
    rows = [{"params.model.hidden": h, "params.seed": str(s), "params.data.name": d,
             "metrics.best_val_accuracy": np.nan if d == "mnist" else 0.9 + 0.01 * s,
             "metrics.test_accuracy": 0.8 + 0.01 * s}
            for d in ("digits", "mnist") for h in ("8", "16") for s in (0, 1)]
    groups = config_groups.group(_runs(rows))
    shown = config_groups.readable(groups)
    mnist = shown[shown["dataset"] == "mnist"]
    assert set(mnist["verdict"]) == {"no best_val_accuracy logged"}
    assert set(mnist["best_val_accuracy 95 % CI"]) == {"— (none logged)"}
    assert not any("one seed" in line for line in config_groups.notes(groups))
    nothing = significance.against_best([[np.nan], [np.nan, np.nan]])
    assert nothing.best == -1 and nothing.verdicts == [significance.NO_VALUE] * 2


def test_a_stored_infinity_or_a_nan_is_no_seed():
    """MLflow's SQL store gives +inf back as 1.797e308: never ranked best, and neither it nor a
    NaN counts in n."""
    rows = [{"params.model.hidden": h, "params.seed": str(s), "params.data.name": "digits",
             "metrics.test_loss": v}
            for h, values in (("8", [0.30, 0.32, 1.7976931348623157e308]),
                              ("16", [0.40, 0.41, np.nan]))
            for s, v in enumerate(values)]
    table = config_groups.group(_runs(rows), "test_loss").table
    assert table["config"].tolist() == ["hidden=8", "hidden=16"]
    assert table["n"].tolist() == [2, 2]
    assert table["test_loss_mean"].tolist() == pytest.approx([0.31, 0.405])


def test_a_reports_header_takes_runs_without_a_data_digest():
    """Runs logged without the data.sha256 tag (another tool, an older digitlab): the HTML
    report's header names no digest instead of failing."""
    from digitlab.cli.compare import _about

    runs = _runs([{"params.seed": "0", "metrics.best_val_accuracy": 0.9}])
    assert _about(None, runs).digests == []
    assert _about(None, runs.assign(**{"tags.data.sha256": "abc"})).digests == ["abc"]


def test_a_config_is_named_by_the_keys_that_vary_within_its_dataset():
    """Runs of two datasets (all_runs=true): a key only the datasets set differently (their
    batch size, their root) names no config; the hidden size, varied within each, does."""
    runs = _runs([{"params.data.name": d, "params.data.root": root, "params.model.hidden": h,
                   "params.trainer.batch_size": batch, "params.seed": str(s),
                   "metrics.best_val_accuracy": 0.9 + 0.01 * s}
                  for d, root, batch, hs in (("digits", "None", "10", ("16", "64")),
                                             ("fashion_mnist", "/data", "128", ("100",)))
                  for h in hs for s in range(2)])
    table = config_groups.group(runs).table
    assert table[["dataset", "config"]].values.tolist() == [
        ["digits", "hidden=16"], ["digits", "hidden=64"], ["fashion_mnist", "all runs"]]


def test_the_notes_name_the_configs_a_pruner_stopped_and_where():
    runs = _runs([{"params.model.hidden": h, "params.seed": "0", "metrics.best_val_accuracy": v,
                   "tags.digitlab.pruned": pruned, "tags.digitlab.pruned_epoch": epoch}
                  for h, v, pruned, epoch in (("8", 0.2, "true", "1"), ("16", 0.9, None, None))])
    groups = config_groups.group(runs)
    assert groups.stopped == {"hidden=8": "1"}
    assert config_groups.notes(groups)[-1] == (
        "Stopped early (by the search's pruner or a halving sweep), so their numbers are at "
        "fewer epochs than asked: hidden=8 after epoch 1.")
    assert config_groups.group(runs.drop(columns=["tags.digitlab.pruned"])).stopped == {}


def test_a_report_reads_the_histories_of_its_curves_runs_only_and_says_what_it_left_out():
    """Eight configs of two seeds: the curves draw the six best, so only their twelve runs'
    histories are read (not one per run of the store), and the figure's title says so."""
    from digitlab import report

    runs = _runs([{"params.model.hidden": str(h), "params.seed": str(s),
                   "params.data.name": "digits", "metrics.best_val_accuracy": 0.5 + h / 100}
                  for h in range(8) for s in range(2)])
    ids = report.curve_run_ids(runs)
    assert sorted(ids) == sorted(runs.loc[runs["params.model.hidden"].astype(int) >= 2,
                                          "run_id"])
    histories = {run_id: {"val_accuracy": [0.5, 0.6]} for run_id in ids}
    figure = report.learning_curves(runs, histories)
    assert figure.layout.title.text.endswith(", the 6 best of 8 configs")
    few = runs[runs["params.model.hidden"].astype(int) < 3]
    assert "best of" not in report.learning_curves(few, histories).layout.title.text


def test_welch_on_nearly_identical_seeds_says_nothing_to_stderr(capsys):
    """Two seeds that score alike up to rounding: scipy warns of precision loss; the test is
    still the test, and no warning reaches the command's output."""
    import warnings

    a, b = [0.9722222222222222, 0.9722222222222223], [0.9583333333333334, 0.9652777777777778]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning left would fail here
        p = significance.welch_p(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's own, called here as the reference
        assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
