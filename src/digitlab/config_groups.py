"""Runs → configs: the runs that differ only by their seed form a config, configs are compared
within their dataset only, and each config gets n, mean, sd and the 95 % Student-t interval of
its metrics, its verdict against the dataset's best config (Welch, Holm-adjusted), and the
seeds that would separate the best from its closest rival. Takes MLflow's search_runs table as
plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from digitlab import significance
from digitlab import tags as tag
from digitlab.comparison import dataset_labels, score_metric, varying_params
from digitlab.config import NOT_TRAINED_BY
from digitlab.directions import DEFAULT_METRIC, lower_is_better, metric_range

# params that vary between runs of one config: its seed and the keys that do not change what a
# run trains; tracking.* says where a run is stored
NOT_CONFIG = {"seed", *NOT_TRAINED_BY}
NOT_CONFIG_PREFIXES = ("tracking.",)
EXPERIMENT = "experiment_id"  # a reproduce run's row id: it implies its recipe and publication
SECONDARY = "test_accuracy"  # reported beside the ranking metric when it is another one


def _is_config(name: str) -> bool:
    return name not in NOT_CONFIG and not name.startswith(NOT_CONFIG_PREFIXES)


def config_params(runs: pd.DataFrame) -> list[str]:
    """The params that make a config: those that vary, but the seed and run-level settings; where
    runs name their experiment file, the params that file fixes are left to its name."""
    names = [n for n in varying_params(runs) if _is_config(n)]
    if EXPERIMENT not in names:
        return names
    column = runs[f"params.{EXPERIMENT}"].fillna("—")
    implied = {n for n in names if n != EXPERIMENT and
               runs[f"params.{n}"].fillna("—").groupby(column).nunique().max() <= 1}
    return [n for n in names if n not in implied]


def short_names(params: list[str]) -> dict[str, str]:
    """model.hidden → hidden, unless two params would share a short name."""
    last = [p.split(".")[-1] for p in params]
    return {p: (s if last.count(s) == 1 else p) for p, s in zip(params, last)}


def config_labels(runs: pd.DataFrame, params: list[str] | None = None) -> pd.Series:
    """Each run's config in words: `hidden=64 lr=0.5`, or `all runs` when nothing varies."""
    params = config_params(runs) if params is None else params
    names = short_names(params)
    if not params:
        return pd.Series("all runs", index=runs.index)
    return runs.apply(lambda row: " ".join(f"{names[p]}={row.get(f'params.{p}')}"
                                           for p in params), axis=1)


def labels_by_dataset(done: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each run of `done` (rows of `runs`) with its dataset and its config in words, naming only
    the params that vary among the runs of its dataset (a key another dataset sets differently
    is no part of this one's configs)."""
    datasets = dataset_labels(runs)
    labels = pd.Series("", index=done.index, dtype=object)
    for dataset in datasets[done.index].unique():
        mine = done.index[datasets[done.index] == dataset]
        labels[mine] = config_labels(done.loc[mine], config_params(runs[datasets == dataset]))
    return datasets[done.index], labels


@dataclass(frozen=True)
class Budget:
    """The best config of a dataset, its closest rival and the seeds that would separate them."""

    dataset: str
    best: str
    rival: str
    budget: significance.SeedBudget

    def sentence(self, metric: str, alpha: float) -> str:
        return (f"{self.dataset}: to tell {self.best} from {self.rival} on {metric} at 80 % power "
                f"(two-sided t-test, α = {alpha:g}): {self.budget.text}")


@dataclass
class ConfigGroups:
    """One row per config of the FINISHED runs (CONFIG columns, then statistics), best first
    within each dataset; the seed budget of each dataset with two configs of ≥ 2 seeds."""

    metric: str
    alpha: float
    table: pd.DataFrame
    params: list[str] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # config → the epoch a pruner stopped

    def metrics(self) -> list[str]:
        return [m for m in dict.fromkeys((self.metric, SECONDARY, "best_epoch", "train_seconds"))
                if f"{m}_mean" in self.table]


def _describe(values: np.ndarray, metric: str, interval: bool) -> dict:
    summary = significance.mean_interval(values, bounds=metric_range(metric))
    row = {f"{metric}_mean": summary.mean,
           f"{metric}_sd": np.nan if summary.sd is None else summary.sd}
    if interval:
        row[f"{metric}_ci_low"] = np.nan if summary.low is None else summary.low
        row[f"{metric}_ci_high"] = np.nan if summary.high is None else summary.high
        row[f"{metric}_ci_clipped"] = summary.clipped
    return row


def finished_once(runs: pd.DataFrame) -> pd.DataFrame:
    """The FINISHED runs, each run identity once: a bit-identical rerun, or a config two sweeps
    trained at once, is not another seed (runs logged without an identity are all kept)."""
    done = runs[runs["status"] == "FINISHED"]
    identity = f"tags.{tag.IDENTITY}"
    return done[done[identity].isna() | ~done[identity].duplicated()] if identity in done else done


def group(runs: pd.DataFrame, metric: str = DEFAULT_METRIC,
          alpha: float = significance.ALPHA) -> ConfigGroups:
    """The configs of `runs`, compared on `metric` (or the score metric the runs have)."""
    done = finished_once(runs)
    metric = score_metric(done.columns, metric) or metric
    params = config_params(runs)
    if done.empty or f"metrics.{metric}" not in done:
        return ConfigGroups(metric, alpha, pd.DataFrame(), params)
    datasets, labels = labels_by_dataset(done, runs)
    shown = [m for m in dict.fromkeys((metric, SECONDARY, "best_epoch", "train_seconds"))
             if f"metrics.{m}" in done]
    rows, budgets = [], []
    for dataset in sorted(datasets.unique()):
        mine = done[datasets == dataset]
        configs = list(dict.fromkeys(labels[mine.index]))
        samples = [pd.to_numeric(mine.loc[labels[mine.index] == c, f"metrics.{metric}"],
                                 errors="coerce").to_numpy() for c in configs]
        verdicts = significance.against_best(samples, lower_is_better(metric), alpha)
        for i, config in enumerate(configs):
            members = mine[labels[mine.index] == config]
            row = {"dataset": dataset, "config": config}
            row.update({p: members[f"params.{p}"].iloc[0] for p in params})
            # the seeds the statistics use: a run whose metric is NaN or infinite is not one
            row["n"] = len(significance.finite(pd.to_numeric(members[f"metrics.{metric}"],
                                                             errors="coerce")))
            for m in shown:
                values = pd.to_numeric(members[f"metrics.{m}"], errors="coerce").to_numpy()
                row.update(_describe(values, m, interval=m in (metric, SECONDARY)))
            verdict = verdicts.verdicts[i]
            row.update({"p_vs_best": verdicts.p[i], "p_vs_best_holm": verdicts.p_holm[i],
                        "verdict": f"no {metric} logged" if verdict == significance.NO_VALUE
                        else verdict})
            rows.append(row)
        budget = _budget(dataset, configs, samples, verdicts.best, metric, alpha)
        if budget is not None:
            budgets.append(budget)
    table = pd.DataFrame(rows).sort_values(["dataset", f"{metric}_mean"],
                                           ascending=[True, lower_is_better(metric)], kind="stable")
    pruned = done.get(f"tags.{tag.PRUNED}", pd.Series(index=done.index)) == "true"
    stopped = {labels[i]: done.at[i, f"tags.{tag.PRUNED_EPOCH}"] for i in done.index[pruned]}
    return ConfigGroups(metric, alpha, table.reset_index(drop=True), params, budgets, stopped)


def _budget(dataset: str, configs: list[str], samples: list[np.ndarray], best: int, metric: str,
            alpha: float) -> Budget | None:
    """The best config against the one whose mean is closest to it, of those with ≥ 2 seeds."""
    if best < 0 or len(significance.finite(samples[best])) < 2:
        return None
    means = {i: significance.finite(s).mean() for i, s in enumerate(samples)
             if i != best and len(significance.finite(s)) >= 2}
    if not means:
        return None
    centre = significance.finite(samples[best]).mean()
    rival = min(means, key=lambda i: abs(means[i] - centre))
    return Budget(dataset, configs[best], configs[rival],
                  significance.seed_budget(samples[best], samples[rival], alpha))


def _number(value: float, digits: int) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.{digits}f}"


DIGITS = {"best_epoch": 1, "train_seconds": 1}  # others: accuracies and losses, 4 decimals


def readable(groups: ConfigGroups) -> pd.DataFrame:
    """The table as a reader wants it: one config column, mean ± sd, the interval as low–high
    (— with one seed), p-values to three decimals."""
    table = groups.table
    if table.empty:
        return table
    shown = pd.DataFrame({"config": table["config"]})
    if table["dataset"].nunique() > 1:
        shown.insert(0, "dataset", table["dataset"])
    shown["n"] = table["n"]
    for m in groups.metrics():
        digits = DIGITS.get(m, 4)
        mean, sd = table[f"{m}_mean"], table[f"{m}_sd"]
        shown[m] = [_number(a, digits) + ("" if np.isnan(b) else f" ± {_number(b, digits)}")
                    for a, b in zip(mean, sd)]
        if f"{m}_ci_low" in table:
            shown[f"{m} 95 % CI"] = [
                "— (none logged)" if np.isnan(a) else "— (one seed)" if np.isnan(lo)
                else f"{_number(lo, digits)}–{_number(hi, digits)}{' *' if cut else ''}"
                for a, lo, hi, cut in zip(mean, table[f"{m}_ci_low"], table[f"{m}_ci_high"],
                                          table[f"{m}_ci_clipped"])]
    shown["p vs best (Holm)"] = [significance.format_p(p) for p in table["p_vs_best_holm"]]
    shown["verdict"] = table["verdict"]
    return shown


def notes(groups: ConfigGroups) -> list[str]:
    """What the table's statistics are, and each dataset's seed budget, as sentences."""
    if groups.table.empty:
        return []
    clipped = any(groups.table[c].any() for c in groups.table if c.endswith("_ci_clipped"))
    bound = (", clipped to the values each metric can take ([0, 1] for an accuracy, ≥ 0 for a "
             "loss; * where it reached past them)" if clipped else "")
    lines = [f"95 % CI: Student-t interval of the mean over seeds{bound}; verdicts: Welch's "
             f"t-test of {groups.metric} against the best config of the dataset, p-values "
             f"Holm-adjusted across its configs, α = {groups.alpha:g}."]
    if ((groups.table["n"] < 2) & groups.table[f"{groups.metric}_mean"].notna()).any():
        lines.append("Configs with one seed have no interval and no test: run more seeds "
                     "(seed=0,1,2).")
    lines += [b.sentence(groups.metric, groups.alpha) for b in groups.budgets]
    if groups.stopped:
        where = "; ".join(f"{config} after epoch {epoch}"
                          for config, epoch in groups.stopped.items())
        lines.append("Stopped early (by the search's pruner or a halving sweep), so their "
                     f"numbers are at fewer epochs than asked: {where}.")
    return lines
