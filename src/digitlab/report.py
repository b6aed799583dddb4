"""A sweep (or a reproduce run, or a search study) as ONE self-contained HTML file: the runs table
with seeds grouped, parallel coordinates, learning curves, the best run's confusion matrix and
per-class report, published against reproduced, and how to rerun it. Plotly draws the figures and
its JavaScript is inlined, Jinja2 fills the page: it opens from disk with no server and no
network. Takes plain data (MLflow's search_runs table, metric histories, files); fetching them
belongs to digitlab.tracking."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from digitlab.comparison import score_metric, varying_params
from digitlab.directions import lower_is_better

CURVES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
# run-level settings that differ between runs without making them another config
NOT_CONFIG = {"seed", "trainer.blas_threads"}
TEMPLATE = Path(__file__).with_name("templates") / "report.html.j2"
# the best run's report/<name>.png shown under it: what it learned, where it fails, its layers
VIEWS = ("first_layer_weights", "misclassified", "layer_curves")


@dataclass
class BestRun:
    """The best run's evaluation, as its artifacts hold it."""
    run_id: str
    name: str
    confusion_png: bytes | None = None
    per_class: dict = field(default_factory=dict)  # classification_report.json
    # report/first_layer_weights.png, misclassified.png, layer_curves.png, where the run has them
    views: dict = field(default_factory=dict)


@dataclass
class About:
    """What the report says about where it comes from, so that it says how to rerun it."""
    title: str
    command: str
    commit: str
    created: str
    digests: list[str]
    ui_run_url: str | None = None  # the parent run in the MLflow UI, when a UI URL is given


def config_key(runs: pd.DataFrame) -> list[str]:
    """The params that make a config: every varying param but the seed (and thread counts)."""
    return [p for p in varying_params(runs) if p not in NOT_CONFIG]


def seed_groups(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """One row per config of the FINISHED runs: its params, n, and mean ± sd of each metric
    over the configs' seeds; best first by the first metric."""
    done = runs[runs["status"] == "FINISHED"]
    keys = [f"params.{p}" for p in config_key(runs)]
    present = [m for m in metrics if f"metrics.{m}" in done]
    if done.empty or not present:
        return pd.DataFrame()
    grouper = done[keys].fillna("—").astype(str) if keys else pd.Series("all", index=done.index)
    rows = []
    for values, group in done.groupby([grouper[k] for k in keys] if keys else grouper):
        values = values if isinstance(values, tuple) else (values,)
        row = dict(zip(config_key(runs), values)) if keys else {}
        row["n"] = len(group)
        for m in present:
            column = pd.to_numeric(group[f"metrics.{m}"], errors="coerce")
            row[f"{m} mean"] = column.mean()
            row[f"{m} sd"] = column.std(ddof=1) if len(group) > 1 else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(f"{present[0]} mean", ascending=lower_is_better(present[0])
                             ).reset_index(drop=True)


def _config_label(row: pd.Series, keys: Sequence[str]) -> str:
    return " ".join(f"{k.split('.')[-1]}={row[f'params.{k}']}" for k in keys) or "all runs"


def parallel_coordinates(runs: pd.DataFrame, metric: str):
    """One line per FINISHED run across the varying params to `metric` (its colour)."""
    import plotly.graph_objects as go

    done = runs[runs["status"] == "FINISHED"]
    if done.empty or f"metrics.{metric}" not in done:
        return None
    dimensions = []
    for name in varying_params(runs):
        values = done[f"params.{name}"].astype(str)
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().all():
            dimensions.append({"label": name, "values": numbers})
        else:  # a categorical axis: its values as ticks
            levels = sorted(values.unique())
            dimensions.append({"label": name, "values": values.map(levels.index),
                               "tickvals": list(range(len(levels))), "ticktext": levels})
    score = pd.to_numeric(done[f"metrics.{metric}"], errors="coerce")
    dimensions.append({"label": metric, "values": score})
    figure = go.Figure(go.Parcoords(line={"color": score, "colorscale": "Viridis",
                                          "showscale": True}, dimensions=dimensions))
    figure.update_layout(title={"text": f"Swept params → {metric}, one line per run", "y": 0.97},
                         height=460, margin={"l": 60, "r": 60, "t": 110, "b": 30})
    return figure


def _top_configs(runs: pd.DataFrame, top: int):
    """The FINISHED runs, each one's config label, and the `top` labels by their mean score
    (best validation accuracy, else test accuracy), best first; None without finished runs."""
    done = runs[runs["status"] == "FINISHED"]
    if done.empty:
        return None
    keys = config_key(runs)
    metric = score_metric(done.columns)
    labels = done.apply(lambda row: _config_label(row, keys), axis=1)
    order = (pd.to_numeric(done[f"metrics.{metric}"], errors="coerce").groupby(labels).mean()
             .sort_values(ascending=lower_is_better(metric)).index[:top]
             if metric else labels.unique()[:top])
    return done, labels, order


COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _mean_band(figure, series: list[list[float]], first_epoch: int, colour: str, name: str,
               legend: bool, row: int, col: int) -> None:
    """The seeds' mean as a line and ± sd as a band (runs cut to the shortest: early stopping)."""
    import plotly.graph_objects as go

    length = min(len(s) for s in series)
    values = np.array([s[:length] for s in series], dtype=float)
    mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1) if len(values) > 1 else 0
    epochs = np.arange(first_epoch, first_epoch + length)
    figure.add_trace(go.Scatter(x=np.r_[epochs, epochs[::-1]],
                                y=np.r_[mean + sd, (mean - sd)[::-1]], fill="toself",
                                fillcolor=colour, opacity=0.15, line={"width": 0},
                                hoverinfo="skip", showlegend=False), row=row, col=col)
    figure.add_trace(go.Scatter(x=epochs, y=mean, mode="lines", line={"color": colour},
                                name=f"{name} (n={len(values)})", legendgroup=name,
                                showlegend=legend), row=row, col=col)


def learning_curves(runs: pd.DataFrame, histories: Mapping[str, Mapping[str, Sequence[float]]],
                    top: int = 6):
    """Per epoch, mean ± sd across each config's seeds, for the `top` configs by their mean
    best validation accuracy (test accuracy where there is no validation set)."""
    from plotly.subplots import make_subplots

    found = _top_configs(runs, top)
    if found is None:
        return None
    done, labels, order = found
    figure = make_subplots(rows=2, cols=2, subplot_titles=[c.replace("_", " ") for c in CURVES],
                           shared_xaxes=True)
    for index, label in enumerate(order):
        ids = done.loc[labels == label, "run_id"]
        for panel, key in enumerate(CURVES):
            series = [s for s in (histories.get(r, {}).get(key) or [] for r in ids) if s]
            if series:
                _mean_band(figure, series, 1, COLOURS[index % len(COLOURS)], label, panel == 0,
                           panel // 2 + 1, panel % 2 + 1)
    figure.update_layout(title="Learning curves, mean ± sd over seeds", height=620,
                         margin={"l": 60, "r": 30, "t": 90, "b": 40})
    figure.update_xaxes(title_text="epoch", row=2)
    return figure


def layer_keys(columns) -> list[str]:
    """The runs' layer<l>.grad_b_norm metrics, by layer."""
    keys = [c.removeprefix("metrics.") for c in columns
            if c.startswith("metrics.layer") and c.endswith(".grad_b_norm")]
    return sorted(keys, key=lambda k: int(k.split(".")[0].removeprefix("layer")))


def layer_curves(runs: pd.DataFrame, histories: Mapping[str, Mapping[str, Sequence[float]]],
                 top: int = 6):
    """Each layer's ‖∂C/∂bˡ‖ per epoch from 0 (before training), mean ± sd across each config's
    seeds, on a log scale: where backprop's signal fades; None without per-layer metrics."""
    from plotly.subplots import make_subplots

    found = _top_configs(runs, top)
    keys = layer_keys(runs.columns)
    if found is None or not keys:
        return None
    done, labels, order = found
    columns = min(4, len(keys))
    rows = -(-len(keys) // columns)
    figure = make_subplots(rows=rows, cols=columns, shared_xaxes=True,
                           subplot_titles=[k.split(".")[0].replace("layer", "layer ")
                                           for k in keys])
    for index, label in enumerate(order):
        ids = done.loc[labels == label, "run_id"]
        for panel, key in enumerate(keys):
            series = [s for s in (histories.get(r, {}).get(key) or [] for r in ids) if s]
            if series:
                _mean_band(figure, series, 0, COLOURS[index % len(COLOURS)], label, panel == 0,
                           panel // columns + 1, panel % columns + 1)
    figure.update_yaxes(type="log")
    figure.update_layout(title="Speed of learning per layer, ‖∂C/∂bˡ‖ on the probe rows, mean ± "
                               "sd over seeds (epoch 0: before training)",
                         height=320 * rows + 100, margin={"l": 60, "r": 30, "t": 90, "b": 40})
    figure.update_xaxes(title_text="epoch", row=rows)
    return figure


def _figure_html(figure) -> str:
    if figure is None:
        return ""
    return figure.to_html(full_html=False, include_plotlyjs=False,
                          config={"displaylogo": False, "responsive": True})


def _png(data: bytes | None) -> str | None:
    return None if not data else "data:image/png;base64," + base64.b64encode(data).decode()


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "—" if np.isnan(value) else f"{value:.4f}"
    return str(value)


def _rows(table: pd.DataFrame) -> list[list[str]]:
    return [[_cell(v) for v in row] for row in table.itertuples(index=False)]


def _mean_sd(groups: pd.DataFrame) -> pd.DataFrame:
    """Each metric's "mean" and "sd" columns as one "mean ± sd" column (— for one run)."""
    shown = groups.copy()
    for column in [c for c in groups.columns if c.endswith(" mean")]:
        metric = column.removesuffix(" mean")
        shown[metric] = [f"{m:.4f} ± {sd:.4f}" if not np.isnan(sd) else f"{m:.4f}"
                         for m, sd in zip(groups[column], groups[f"{metric} sd"])]
        shown = shown.drop(columns=[column, f"{metric} sd"])
    return shown


def render(runs: pd.DataFrame, histories: Mapping[str, Mapping[str, Sequence[float]]],
           about: About, metric: str = "best_val_accuracy", best: BestRun | None = None,
           published: pd.DataFrame | None = None,
           published_curves: Mapping[str, bytes] | None = None, ui_url: str | None = None) -> str:
    """The report as one HTML document (Jinja2 escapes every value it is given)."""
    import jinja2
    from plotly.offline import get_plotlyjs

    from digitlab.comparison import comparison_table

    table = comparison_table(runs)
    shown = table.drop(columns=["run_id"])
    metric = score_metric(runs.columns, metric) or metric
    links = {}
    if ui_url:
        experiments = dict(zip(runs["run_id"], runs["experiment_id"]))
        links = {r: f"{ui_url.rstrip('/')}/#/experiments/{experiments[r]}/runs/{r}"
                 for r in table["run_id"]}
    groups = _mean_sd(seed_groups(runs, [metric, "test_accuracy", "best_epoch", "train_seconds"]))
    per_class = []
    if best and best.per_class:
        per_class = [[str(label), *(f"{scores.get(k, np.nan):.4f}"
                                                 for k in ("precision", "recall", "f1-score")),
                      f"{scores.get('support', 0):.0f}"]
                     for label, scores in best.per_class.items() if isinstance(scores, dict)]
    environment = jinja2.Environment(autoescape=jinja2.select_autoescape(["html", "j2"]),
                                     undefined=jinja2.StrictUndefined)
    template = environment.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        about=about, metric=metric, plotly_js=get_plotlyjs(),
        runs_header=list(shown.columns),
        runs_rows=[(cells, run_id, links.get(run_id))
                   for cells, run_id in zip(_rows(shown), table["run_id"])],
        groups_header=list(groups.columns), groups_rows=_rows(groups),
        parallel=_figure_html(parallel_coordinates(runs, metric)),
        curves=_figure_html(learning_curves(runs, histories)),
        layers=_figure_html(layer_curves(runs, histories)),
        best=best, confusion=_png(best.confusion_png) if best else None, per_class=per_class,
        views={name: _png(data) for name, data in (best.views if best else {}).items()},
        published_header=list(published.columns) if published is not None else [],
        published_rows=_rows(published) if published is not None else [],
        published_curves={k: _png(v) for k, v in (published_curves or {}).items()},
    )
