"""Runs → a comparison table (pandas) and figures. Takes MLflow's search_runs table as plain
data; fetching it belongs to digitlab.tracking."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from digitlab.directions import DEFAULT_METRIC, lower_is_better

SWEPT = ["model.hidden", "optim.lr", "trainer.epochs", "seed"]  # the four quantities a sweep varies
METRICS = ["best_val_accuracy", "val_accuracy", "test_accuracy", "train_accuracy",
           "train_loss", "best_epoch", "train_seconds"]


def varying_params(runs: pd.DataFrame) -> list[str]:
    """Param names whose values differ between runs, those four first."""
    names = [c.removeprefix("params.") for c in runs.columns if c.startswith("params.")]
    varying = [n for n in names if runs[f"params.{n}"].nunique(dropna=False) > 1]
    return [n for n in SWEPT if n in varying] + sorted(n for n in varying if n not in SWEPT)


def dataset_labels(runs: pd.DataFrame) -> pd.Series:
    """Each run's dataset: its data.name, with the data digest's start where one name covers
    several files (two Kaggle CSVs), so that runs on different data are never pooled."""
    names = runs.get("params.data.name", pd.Series("—", index=runs.index)).fillna("—")
    digests = runs.get("tags.data.sha256", pd.Series("", index=runs.index)).fillna("")
    several = digests.groupby(names).transform("nunique") > 1
    return names.where(~several, names + " " + digests.str[:8])


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: name, status, swept params, final and best metrics, duration;
    best validation accuracy first."""
    table = pd.DataFrame(index=runs.index)
    table["run"] = runs.get("tags.mlflow.runName")
    table["status"] = runs["status"]
    datasets = dataset_labels(runs)
    if datasets.nunique() > 1:  # runs on different data: never one ranking without saying so
        table["dataset"] = datasets
    for name in varying_params(runs):
        table[name] = runs[f"params.{name}"]
    for metric in METRICS:
        if f"metrics.{metric}" in runs:
            table[metric] = runs[f"metrics.{metric}"]
    table["duration_s"] = (pd.to_datetime(runs["end_time"], utc=True)
                           - pd.to_datetime(runs["start_time"], utc=True)).dt.total_seconds()
    table["run_id"] = runs["run_id"]
    key = score_metric(table.columns)
    if key is None:
        return table.reset_index(drop=True)
    return table.sort_values(key, ascending=lower_is_better(key),
                             na_position="last").reset_index(drop=True)


def score_metric(names, preferred: str = DEFAULT_METRIC) -> str | None:
    """The metric that ranks runs: `preferred`, else validation, test, then training accuracy
    (runs without a validation or test set, such as scikit-learn's digits examples)."""
    names = {n.removeprefix("metrics.") for n in names}
    return next((m for m in (preferred, DEFAULT_METRIC, "test_accuracy", "train_accuracy")
                 if m in names), None)


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def _figure(width: float) -> Figure:
    # fixed margins: constrained layout measures every label and costs ≈ 0.05 s per figure
    fig = Figure(figsize=(width, 4.5))
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.11, top=0.92)
    return fig


def accuracy_by_hidden_figure(table: pd.DataFrame, metric: str = DEFAULT_METRIC) -> Figure:
    """Accuracy against hidden size (one layer), one line per learning rate, mean ± sd over the
    other swept settings (seeds)."""
    fig = _figure(6.5)
    ax = fig.add_subplot()
    done = table[table.status == "FINISHED"].copy()
    metric = score_metric(done.columns, metric) or metric
    done["hidden"] = _numeric(done["model.hidden"]) if "model.hidden" in done else np.nan
    lrs = done["optim.lr"] if "optim.lr" in done else pd.Series("", index=done.index)
    datasets = done["dataset"] if "dataset" in done else pd.Series("", index=done.index)
    for (dataset, lr), group in done.dropna(subset=["hidden"]).groupby([datasets, lrs]):
        stats = group.groupby("hidden")[metric].agg(["mean", "std"]).sort_index()
        label = " ".join(x for x in (dataset, f"lr={lr}" if lr != "" else "") if x)
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                    capsize=3, label=label or None)
    ax.set_xscale("log", base=2)
    ax.set_title(f"{metric.replace('_', ' ')} by hidden size, mean ± sd over the other settings")
    ax.set_xlabel("hidden units")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title="learning rate")
    return fig


def learning_curves_of_best(histories: Mapping[str, Mapping[str, Sequence[float]]]) -> Figure:
    """Per-epoch training and validation accuracy of a few runs, keyed by run name."""
    fig = _figure(7)
    ax = fig.add_subplot()
    for (name, curves), color in zip(histories.items(), ("C0", "C1", "C2", "C3", "C4")):
        for key, style in (("train_accuracy", ":"), ("val_accuracy", "-")):
            values = curves.get(key) or []
            if values:
                ax.plot(np.arange(1, len(values) + 1), values, style, color=color,
                        label=f"{name} ({key.split('_')[0]})")
    ax.set_title(f"Learning curves of the best {len(histories)} run(s)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def published_curve_figure(title: str, curve: Sequence[float], runs, published) -> Figure:
    """Published per-epoch accuracy against each reproduced run's (percent)."""
    from digitlab.reproduction import SERIES

    fig = _figure(7)
    ax = fig.add_subplot()
    ax.plot(np.arange(1, len(curve) + 1), curve, color="black", lw=2, label="published")
    for run in runs:
        series = [100 * a for a in run.history.get(SERIES[published.split]) or []]
        ax.plot(np.arange(1, len(series) + 1), series, alpha=0.8, label=f"seed {run.seed}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{published.split} accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def speed_curve_figure(title: str, curve, runs, layers: int) -> Figure:
    """Nielsen's "speed of learning" drawn as the book draws it: ‖∂C/∂bˡ‖ of each hidden layer
    per epoch on a log scale; published dashed, the seeds' mean solid, their range shaded."""
    from digitlab.reproduction import speed_series

    fig = _figure(7)
    ax = fig.add_subplot()
    colours = ["#2A6EA6", "#FFA933", "#FF5555", "#55AA55", "#5555FF"]  # Nielsen's
    series = np.array([speed_series(run, layers) for run in runs])  # runs × epochs × layers
    length = series.shape[1]
    for layer in range(layers):
        colour = colours[layer % len(colours)]
        epochs = np.arange(length)
        ax.fill_between(epochs, series[:, :, layer].min(axis=0), series[:, :, layer].max(axis=0),
                        color=colour, alpha=0.2, lw=0)
        ax.plot(epochs, series[:, :, layer].mean(axis=0), color=colour,
                label=f"hidden layer {layer + 1}, {len(runs)} seeds")
        if curve is not None:
            ax.plot(np.arange(len(curve)), np.asarray(curve)[:, layer], color=colour, ls="--",
                    label=f"hidden layer {layer + 1}, published")
    ax.set_yscale("log")
    ax.set_xlabel("epochs of training")
    ax.set_ylabel("‖∂C/∂b‖ over the 1,000 images")
    ax.set_title(f"{title}: speed of learning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", ncol=2)
    return fig
