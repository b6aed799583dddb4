"""The compare command's logic; pipelines/compare.py is its entry point."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from hydra.core.config_store import ConfigStore

from digitlab import cli
from digitlab import tags as tag
from digitlab.config import ExperimentFilterConfig
from digitlab.directions import DEFAULT_METRIC, best_label
from digitlab.files import folder_name
from digitlab.significance import ALPHA

if TYPE_CHECKING:
    from digitlab.report import About

FORMATS = ("files", "html")


@dataclass
class CompareConfig:
    # a parent run id (a sweep, a reproduce run, a search study); null = the latest sweep
    sweep: Optional[str] = None
    all_runs: bool = False  # true = every run of tracking.experiment (of the store), not one sweep
    tracking: ExperimentFilterConfig = field(default_factory=ExperimentFilterConfig)
    out: str = "reports"  # the files go to <out>/<sweep or experiment>/
    top: int = 3  # learning curves of the best N runs (format=files)
    # files: table.csv and table.md (configs), runs.csv (runs), two figures; html: report.html
    format: str = "files"
    # what ranks the configs and picks the best run; the default falls back to test accuracy
    # (then training accuracy) for runs without a validation set
    metric: str = DEFAULT_METRIC
    alpha: float = ALPHA  # the family-wise error rate of the verdicts against the best config
    ui_url: Optional[str] = None  # the MLflow UI's address: the report links each run to it
    # head to head: a run id, a sweep's parent run id, or a config of the sweep as the table
    # names it (a='hidden=64 lr=0.5'); both a= and b=, or neither
    a: Optional[str] = None
    b: Optional[str] = None


ConfigStore.instance().store(name="base_compare", node=CompareConfig)


def _runs(uri: str, cfg: CompareConfig):
    """(parent run or None, label, runs), saying which sweep was taken and why."""
    import pandas as pd

    from digitlab.tracking.queries import experiment_ids, find_sweep, runs_frame, sweep_runs

    if cfg.all_runs:
        runs = runs_frame(uri, experiment_ids(uri, cfg.tracking.experiment))
        runs = runs[runs.get("tags.digitlab.jobs", pd.Series(index=runs.index)).isna()]
        epochs = runs.get("params.trainer.epochs", pd.Series(dtype=str)).dropna().unique()
        if len(epochs) > 1:
            print(f"all_runs=true pools runs of {len(epochs)} different epoch counts "
                  f"({', '.join(sorted(epochs, key=float))}); each epoch count is its own "
                  "config in the tables")
        return None, cfg.tracking.experiment or "all-runs", runs
    parent = find_sweep(uri, cfg.tracking.experiment, cfg.sweep)
    runs = sweep_runs(uri, parent)
    print(f"comparing {which_sweep(parent, cfg.sweep, cfg.tracking.experiment, runs)}")
    return parent, parent.info.run_id, runs


def which_sweep(parent, given: str | None, experiment: str | None, runs) -> str:
    """Which parent run a command took, why, and how many of its runs it trained itself: a user
    must never guess which sweep it was, nor take runs reused from earlier sweeps for new ones."""
    from digitlab.tracking.queries import reused_runs

    started = datetime.fromtimestamp(parent.info.start_time / 1000, timezone.utc)
    where = f"experiment {experiment!r}" if experiment else "the store"
    why = ("as given by sweep=" if given else
           f"the latest sweep of {where} with runs; another: sweep=<id>")
    reused = len(reused_runs(parent.data.tags))
    owned = (f"; {len(runs)} run(s), {reused} of them reused as FINISHED by earlier sweeps"
             if reused else "")
    return (f"{parent.info.run_name!r} ({parent.info.run_id}, started "
            f"{started:%Y-%m-%d %H:%M} UTC): {why}{owned}")


def run(cfg: CompareConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    if cfg.format not in FORMATS:
        cli.fail(f"format={cfg.format}: expected one of {', '.join(FORMATS)}.")
    if not 0 < cfg.alpha < 1:
        cli.fail(f"alpha={cfg.alpha}: give the error rate of the verdicts, a number between 0 "
                 "and 1 (alpha=0.05 by default)")
    cli.check_writable(cfg.out, "out")
    from digitlab.tracking.queries import log_files

    if (cfg.a is None) != (cfg.b is None):
        given = "a" if cfg.a is not None else "b"
        cli.fail(f"{given}= alone: a head-to-head comparison needs both a=<…> and b=<…> (a run "
                 "id, a sweep's parent run id, or a config as the table names it)")
    uri = cli.checked_store(cfg.tracking.uri)
    if cfg.a is not None:
        from digitlab.cli import head_to_head

        print(head_to_head.compare(uri, cfg.tracking.experiment, cfg.sweep, str(cfg.a),
                                   str(cfg.b), cfg.metric, cfg.alpha))
        return
    try:
        parent, label, runs = _runs(uri, cfg)
    except LookupError as exc:
        cli.fail(str(exc))
    if runs.empty:
        cli.fail(f"no runs found for {label}; did the sweep start any job?")
    if cfg.metric != DEFAULT_METRIC and f"metrics.{cfg.metric}" not in runs:
        known = sorted(c.removeprefix("metrics.") for c in runs if c.startswith("metrics.")
                       and not c.startswith("metrics.layer"))
        cli.fail(f"metric={cfg.metric}: no run of {label} logged it; rank by one they logged: "
                 f"{', '.join(known)}")
    out = Path(cfg.out) / folder_name(label)
    out.mkdir(parents=True, exist_ok=True)
    written = (_write_html(uri, cfg, parent, label, runs, out) if cfg.format == "html"
               else _write_files(uri, cfg, runs, out))
    print(f"{len(runs)} runs of {label}: {written}")
    if parent is not None:
        log_files(uri, parent.info.run_id, out, "compare")
        print(f"logged to the parent run {parent.info.run_id} under compare/")


def _write_files(uri: str, cfg: CompareConfig, runs, out: Path) -> str:
    import pandas as pd

    from digitlab import comparison, config_groups
    from digitlab.tracking.queries import metric_history

    table = comparison.comparison_table(runs)
    groups = config_groups.group(runs, cfg.metric, cfg.alpha)
    readable = config_groups.readable(groups)
    notes = config_groups.notes(groups)
    cli.write_whole(out / "table.csv", lambda p: groups.table.to_csv(p, index=False), "out")
    cli.write_whole(out / "table.md", lambda p: p.write_text(
        readable.to_markdown(index=False) + "\n\n" + "".join(f"{n}\n" for n in notes)), "out")
    cli.write_whole(out / "runs.csv", lambda p: table.to_csv(p, index=False), "out")
    figure = comparison.accuracy_by_hidden_figure(table)
    cli.write_whole(out / "accuracy_by_hidden.png",
                    lambda p: figure.savefig(p, dpi=110, format="png"), "out")
    best = table[table.status == "FINISHED"].head(cfg.top)
    histories = {row.run: {key: metric_history(uri, row.run_id, key)
                           for key in ("train_accuracy", "val_accuracy")}
                 for row in best.itertuples()}
    curves = comparison.learning_curves_of_best(histories)
    cli.write_whole(out / "learning_curves_best.png",
                    lambda p: curves.savefig(p, dpi=110, format="png"), "out")
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.max_colwidth", 60):
        print(readable.to_string(index=False) if len(readable) else "no finished run")
    print("".join(f"\n{n}" for n in notes))
    return f"configs in {out}/table.csv and table.md, runs in runs.csv, figures beside them"


def _about(parent, runs) -> About:
    from digitlab import report

    tags = parent.data.tags if parent is not None else {}
    if tag.ONLY in tags:
        command = (f"python pipelines/reproduce.py 'only={tags[tag.ONLY]}' "
                   f"seeds={tags.get(tag.SEEDS, 3)}")
    elif tag.STUDY in tags:
        command = (f"python pipelines/search.py study={tags[tag.STUDY]} "
                   f"n_trials={tags.get(tag.N_TRIALS, '')}")
    elif parent is not None:  # digitlab.command has the launcher's settings too
        command = tags.get(tag.COMMAND) or (
            f"python pipelines/train.py -m {tags.get(tag.OVERRIDES, '')}".strip())
    else:
        command = "python pipelines/compare.py all_runs=true"
    commit = tags.get(tag.GIT_COMMIT, "unknown") + (
        " (dirty)" if tags.get(tag.GIT_DIRTY) == "true" else "")
    started = (datetime.fromtimestamp(parent.info.start_time / 1000, timezone.utc)
               if parent is not None else datetime.now(timezone.utc))
    column = f"tags.{tag.DATA_DIGEST}"  # runs logged before the digest was a tag have none
    digests = sorted(runs[column].dropna().unique()) if column in runs else []
    title = parent.info.run_name if parent is not None else "all runs"
    return report.About(title=f"digitlab: {title}", command=command, commit=commit,
                        created=f"{started:%Y-%m-%d %H:%M} UTC", digests=list(digests))


def _study_figures(tags: dict) -> list:
    """A search's own Optuna figures, its optimization history and its parameters'
    importances (fANOVA), from the study's storage; none when it cannot be read."""
    if tag.STUDY not in tags or tag.STORAGE not in tags:
        return []
    import optuna

    try:
        study = optuna.load_study(study_name=tags[tag.STUDY],
                                  storage=tags[tag.STORAGE])
    except (KeyError, ValueError, RuntimeError) as exc:  # no such study, storage gone
        print(f"the study's figures are left out: {str(exc).splitlines()[0]}")
        return []
    figures = [optuna.visualization.plot_optimization_history(study)]
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(finished) >= 2 and any(t.params for t in finished):
        figures.append(optuna.visualization.plot_param_importances(study))
    return figures


def _write_html(uri: str, cfg: CompareConfig, parent, label: str, runs, out: Path) -> str:
    import pandas as pd

    from digitlab import comparison, report
    from digitlab.tracking.queries import artifact_files, metric_history

    about = _about(parent, runs)
    if cfg.ui_url and parent is not None:
        from digitlab.tracking.store import ui_path

        about.ui_run_url = (f"{cfg.ui_url.rstrip('/')}/"
                            f"{ui_path(parent.info.experiment_id, parent.info.run_id)}")
    keys = [*report.CURVES, *report.layer_keys(runs.columns)]  # with step 0 for the layers
    histories = {run_id: {key: metric_history(uri, run_id, key) for key in keys}
                 for run_id in report.curve_run_ids(runs)}  # the curves' runs only
    metric = comparison.score_metric(runs.columns, cfg.metric) or cfg.metric
    done = runs[runs["status"] == "FINISHED"]
    best = None
    if len(done) and f"metrics.{metric}" in done:
        top = done.loc[best_label(pd.to_numeric(done[f"metrics.{metric}"], errors="coerce"),
                                  metric)]
        files = artifact_files(uri, top["run_id"], "report")
        per_class = json.loads(files["classification_report.json"]) if (
            "classification_report.json" in files) else {}
        views = {name: files[f"{name}.png"] for name in report.VIEWS if f"{name}.png" in files}
        best = report.BestRun(top["run_id"], str(top.get("tags.mlflow.runName", top["run_id"])),
                              files.get("confusion_matrix.png"), per_class, views)
    published, curves = None, {}
    if parent is not None and tag.ONLY in parent.data.tags:  # a reproduce run
        files = artifact_files(uri, parent.info.run_id, "reproduce")
        if "reproduce_table.json" in files:
            logged = json.loads(files["reproduce_table.json"])
            published = pd.DataFrame(logged["data"], columns=logged["columns"])
        curves = {name.removeprefix("curve-").removesuffix(".png"): data
                  for name, data in sorted(files.items()) if name.startswith("curve-")}
    study = _study_figures(parent.data.tags) if parent is not None else []
    page = report.render(runs, histories, about, metric, best, published, curves, cfg.ui_url,
                         cfg.alpha, study)
    path = out / "report.html"  # a reader never sees half a report
    cli.write_whole(path, lambda p: p.write_text(page, encoding="utf-8"), "out")
    return f"{path} ({len(page) / 1e6:.1f} MB, opens offline)"
