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

from digitlab import config_groups
from digitlab.comparison import score_metric
from digitlab.directions import DEFAULT_METRIC, lower_is_better

CURVES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
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


def parallel_coordinates(runs: pd.DataFrame, metric: str):
    """One line per FINISHED run across the varying params to `metric` (its colour)."""
    import plotly.graph_objects as go

    done = runs[runs["status"] == "FINISHED"]
    if done.empty or f"metrics.{metric}" not in done:
        return None
    dimensions = []
    for name in config_groups.config_params(runs):
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


CURVE_CONFIGS = 6  # the configs the curves draw, best first: one colour each (COLOURS)


def curve_run_ids(runs: pd.DataFrame) -> list[str]:
    """The runs whose metric histories the curves draw: those of the best CURVE_CONFIGS
    configs, so that a report reads a bounded number of histories however many runs it has."""
    found = _top_configs(runs, CURVE_CONFIGS)
    if found is None:
        return []
    done, labels, order = found
    return done.loc[labels.isin(order), "run_id"].tolist()


def _top_configs(runs: pd.DataFrame, top: int):
    """The FINISHED runs, each one's config label, and the `top` labels by their mean score
    (best validation accuracy, else test accuracy), best first; None without finished runs."""
    done = runs[runs["status"] == "FINISHED"]
    if done.empty:
        return None
    metric = score_metric(done.columns)
    datasets, labels = config_groups.labels_by_dataset(done, runs)
    if datasets.nunique() > 1:  # configs of different data are different lines
        labels = datasets + " " + labels
    order = (pd.to_numeric(done[f"metrics.{metric}"], errors="coerce").groupby(labels).mean()
             .sort_values(ascending=lower_is_better(metric)).index[:top]
             if metric else labels.unique()[:top])
    return done, labels, order


def _of_configs(order, labels: pd.Series) -> str:
    """What a figure of the top configs leaves out, said in its title."""
    shown, configs = len(order), labels.nunique()
    return f", the {shown} best of {configs} configs" if configs > shown else ""


COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _mean_band(figure, series: list[list[float]], first_epoch: int, colour: str, name: str,
               legend: bool, row: int, col: int, log: bool = False) -> None:
    """The seeds' mean as a line and ± sd as a band (runs cut to the shortest: early stopping)."""
    import plotly.graph_objects as go

    length = min(len(s) for s in series)
    values = np.array([s[:length] for s in series], dtype=float)
    mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1) if len(values) > 1 else 0
    # on a log axis mean − sd may fall to or below 0: the band stops at the lowest seed there
    low = np.maximum(mean - sd, values.min(axis=0)) if log else mean - sd
    epochs = np.arange(first_epoch, first_epoch + length)
    figure.add_trace(go.Scatter(x=np.r_[epochs, epochs[::-1]],
                                y=np.r_[mean + sd, low[::-1]], fill="toself",
                                fillcolor=colour, opacity=0.15, line={"width": 0},
                                hoverinfo="skip", showlegend=False), row=row, col=col)
    figure.add_trace(go.Scatter(x=epochs, y=mean, mode="lines", line={"color": colour},
                                name=f"{_shorten(name)} (n={len(values)})", legendgroup=name,
                                hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                                showlegend=legend), row=row, col=col)


LEGEND_CHARACTERS = 60  # a longer config label is cut in the legend; hovering shows it whole


def _shorten(label: str) -> str:
    return label if len(label) <= LEGEND_CHARACTERS else label[:LEGEND_CHARACTERS - 1] + "…"


def _legend_below(figure, plot_height: int) -> None:
    """The legend under the plots, as wide as the page, so that no label narrows them."""
    figure.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.12,
                                 "xanchor": "left", "x": 0}, height=plot_height + 160)


def learning_curves(runs: pd.DataFrame, histories: Mapping[str, Mapping[str, Sequence[float]]],
                    top: int = CURVE_CONFIGS):
    """Per epoch, mean ± sd across each config's seeds, for the `top` configs by their mean
    best validation accuracy (test accuracy where there is no validation set)."""
    from plotly.subplots import make_subplots

    found = _top_configs(runs, top)
    if found is None:
        return None
    done, labels, order = found
    # a panel only for what the runs logged: no validation panels without a validation split
    keys = [k for k in CURVES if any(histories.get(r, {}).get(k) for r in done["run_id"])]
    if not keys:
        return None
    columns = min(2, len(keys))
    rows = -(-len(keys) // columns)
    figure = make_subplots(rows=rows, cols=columns, shared_xaxes=True, horizontal_spacing=0.1,
                           vertical_spacing=0.14, subplot_titles=[k.replace("_", " ")
                                                                  for k in keys])
    for index, label in enumerate(order):
        ids = done.loc[labels == label, "run_id"]
        for panel, key in enumerate(keys):
            series = [s for s in (histories.get(r, {}).get(key) or [] for r in ids) if s]
            if series:
                _mean_band(figure, series, 1, COLOURS[index % len(COLOURS)], label, panel == 0,
                           panel // columns + 1, panel % columns + 1)
    figure.update_layout(title="Learning curves, mean ± sd over seeds" + _of_configs(order, labels),
                         margin={"l": 60, "r": 30, "t": 90, "b": 40})
    _legend_below(figure, 300 * rows)
    figure.update_xaxes(title_text="epoch", row=rows)
    return figure


def layer_keys(columns) -> list[str]:
    """The runs' layer<l>.grad_b_norm metrics, by layer."""
    keys = [c.removeprefix("metrics.") for c in columns
            if c.startswith("metrics.layer") and c.endswith(".grad_b_norm")]
    return sorted(keys, key=lambda k: int(k.split(".")[0].removeprefix("layer")))


def layer_curves(runs: pd.DataFrame, histories: Mapping[str, Mapping[str, Sequence[float]]],
                 top: int = CURVE_CONFIGS):
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
                           panel // columns + 1, panel % columns + 1, log=True)
    figure.update_yaxes(type="log")
    figure.update_layout(title="Speed of learning per layer, ‖∂C/∂bˡ‖ on the probe rows, mean ± "
                               "sd over seeds (epoch 0: before training)"
                               + _of_configs(order, labels),
                         margin={"l": 60, "r": 30, "t": 90, "b": 40})
    _legend_below(figure, 300 * rows)
    figure.update_xaxes(title_text="epoch", row=rows)
    return figure


def _figure_html(figure) -> str:
    if figure is None:
        return ""
    return figure.to_html(full_html=False, include_plotlyjs=False,
                          config={"displaylogo": False, "responsive": True})


def _png(data: bytes | None) -> str | None:
    return None if not data else "data:image/png;base64," + base64.b64encode(data).decode()


# decimals per column of the runs table; other numbers are accuracies and losses: 4
DECIMALS = {"best_epoch": 0, "train_seconds": 1, "duration_s": 1}


def _cell(value, decimals: int = 4) -> str:
    if isinstance(value, (float, np.floating)):
        return "—" if np.isnan(value) else f"{value:.{decimals}f}"
    text = str(value)
    try:  # a param logged as text: 0.9373047827052342 (a search's draw) reads as 0.937305
        return f"{float(text):.6g}" if len(text) > 8 and "." in text else text
    except ValueError:
        return text


def _rows(table: pd.DataFrame) -> list[list[str]]:
    decimals = [DECIMALS.get(column, 4) for column in table.columns]
    return [[_cell(v, d) for v, d in zip(row, decimals)] for row in table.itertuples(index=False)]


def render(runs: pd.DataFrame, histories: Mapping[str, Mapping[str, Sequence[float]]],
           about: About, metric: str = DEFAULT_METRIC, best: BestRun | None = None,
           published: pd.DataFrame | None = None,
           published_curves: Mapping[str, bytes] | None = None, ui_url: str | None = None,
           alpha: float = config_groups.significance.ALPHA, study_figures: Sequence = ()) -> str:
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
        from digitlab.tracking.store import ui_path

        links = {r: f"{ui_url.rstrip('/')}/{ui_path(experiments[r], r)}" for r in table["run_id"]}
    groups = config_groups.group(runs, metric, alpha)
    readable = config_groups.readable(groups)
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
        groups_header=list(readable.columns), groups_rows=_rows(readable),
        groups_notes=config_groups.notes(groups),
        study=[_figure_html(f) for f in study_figures],
        parallel=_figure_html(parallel_coordinates(runs, metric)),
        curves=_figure_html(learning_curves(runs, histories)),
        layers=_figure_html(layer_curves(runs, histories)),
        best=best, confusion=_png(best.confusion_png) if best else None, per_class=per_class,
        views={name: _png(data) for name, data in (best.views if best else {}).items()},
        published_header=list(published.columns) if published is not None else [],
        published_rows=_rows(published) if published is not None else [],
        published_curves={k: _png(v) for k, v in (published_curves or {}).items()},
    )
