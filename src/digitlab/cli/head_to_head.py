"""compare.py a=… b=…: what each side names (a run, a sweep, a config of a sweep), and the
paragraph that compares them (digitlab.head_to_head)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from digitlab import cli
from digitlab.cli import project

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Side:
    name: str  # how the paragraph names it
    runs: pd.DataFrame  # its FINISHED runs


def _side(uri: str, experiment: str | None, sweep: str | None, given: str, key: str) -> Side:
    from mlflow.exceptions import MlflowException

    from digitlab import config_groups
    from digitlab.tracking.queries import PARENT_KINDS, find_sweep, get_run, runs_by_id, sweep_runs

    if RUN_ID.match(given):
        try:
            run = get_run(uri, given)
        except MlflowException:
            cli.fail(f"{key}={given}: no such run in {uri}; give a run id, a sweep's parent run "
                     "id, or a config as compare.py's table names it")
        if any(tag in run.data.tags for tag in PARENT_KINDS):
            runs = sweep_runs(uri, run)
            return Side(f"sweep {run.info.run_name!r}", config_groups.finished_once(runs))
        if run.info.status != "FINISHED":
            cli.fail(f"{key}={given}: run {run.info.run_name!r} is {run.info.status}; compare "
                     "finished runs")
        runs = runs_by_id(uri, [run.info.experiment_id], [given])
        return Side(f"run {run.info.run_name!r} ({given[:8]})", runs)
    try:
        parent = find_sweep(uri, experiment, sweep)
    except LookupError as exc:
        cli.fail(f"{key}={given}: {exc}")
    runs = sweep_runs(uri, parent)
    done = config_groups.finished_once(runs)
    labels = config_groups.labels_by_dataset(done, runs)[1]
    wanted = " ".join(given.split())
    if wanted not in set(labels):
        cli.fail(f"{key}={given}: no config of that name in sweep {parent.info.run_name!r}; its "
                 f"configs: {', '.join(sorted(set(labels)))} (another sweep: sweep=<id>)")
    return Side(wanted, done[labels == wanted])


def _predictions(uri: str, side: Side, key: str) -> dict:
    from digitlab import reporting
    from digitlab.tracking.queries import artifact_files

    run_id = side.runs["run_id"].iloc[0]
    files = artifact_files(uri, run_id, "report")
    if reporting.PREDICTIONS_FILE not in files:
        cli.fail(f"{key}: {side.name} keeps no report/{reporting.PREDICTIONS_FILE}: it had no "
                 "test set, or was trained by a digitlab that did not keep it; train it again "
                 f"({project.pipeline('rerun.py')} run_id=…{project.store_arg(uri)}) to compare "
                 "image by image")
    return reporting.read_predictions(files[reporting.PREDICTIONS_FILE])


def compare(uri: str, experiment: str | None, sweep: str | None, a: str, b: str, metric: str,
            alpha: float) -> str:
    """The paragraph comparing a with b: image by image for two single runs, seeds otherwise."""
    from digitlab import head_to_head
    from digitlab.comparison import dataset_labels, score_metric

    first, second = _side(uri, experiment, sweep, a, "a"), _side(uri, experiment, sweep, b, "b")
    for side, key in ((first, "a"), (second, "b")):
        if side.runs.empty:
            cli.fail(f"{key}: {side.name} has no finished run")
    datasets = set(dataset_labels(pd.concat([first.runs, second.runs], ignore_index=True)))
    if len(datasets) > 1:
        cli.fail(f"a and b ran on different data ({', '.join(sorted(datasets))}): a comparison "
                 "needs runs on the same dataset")
    if len(first.runs) == 1 and len(second.runs) == 1 and first.runs.run_id.iloc[0] != \
            second.runs.run_id.iloc[0]:
        mine, theirs = _predictions(uri, first, "a"), _predictions(uri, second, "b")
        if mine["images_sha256"] != theirs["images_sha256"] or \
                len(mine["true"]) != len(theirs["true"]):
            cli.fail(f"{first.name} and {second.name} were scored on different test images "
                     "(another split or data); McNemar's test needs the same images")
        return head_to_head.runs_paragraph(first.name, mine["true"], mine["predicted"],
                                           second.name, theirs["predicted"], alpha)
    columns = pd.concat([first.runs, second.runs]).columns
    metric = score_metric(columns, metric) or metric
    values = [pd.to_numeric(side.runs.get(f"metrics.{metric}"), errors="coerce").to_numpy()
              for side in (first, second)]
    return head_to_head.groups_paragraph(first.name, values[0], second.name, values[1], metric,
                                         alpha)
