"""Reading runs back: sweeps, tables of runs, metric histories, the store's status; and
attaching files and tags to a run after it ended."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from digitlab import tags as tag
from digitlab.stopping import deferred
from digitlab.tracking.store import client_for, run_is_stale, ui_path

# ---- reading runs back (compare, rerun) -----------------------------------------------------

# the tag each kind of parent run carries: a sweep's, a reproduction's, a search's
PARENT_KINDS = (tag.JOBS, tag.ONLY, tag.STUDY)


# how many of the latest sweeps find_sweep looks through for one with runs
LOOK_BACK = 20


def find_sweep(uri: str, experiment: str | None, sweep: str | None = None):
    """The parent run of `sweep` (a run id), or the latest sweep of the experiment (of the
    store, when `experiment` is None) that trained or reused a run: a sweep stopped before its
    first job is nobody's results."""
    from mlflow.exceptions import MlflowException

    client = client_for(uri)
    if sweep:
        try:
            parent = client.get_run(sweep)
        except MlflowException:
            raise LookupError(f"sweep={sweep}: no such run in {uri}; give a sweep's parent run "
                              "id (the sweep's summary prints it), or leave sweep= out for the "
                              "latest sweep") from None
        if not any(tag in parent.data.tags for tag in PARENT_KINDS):
            raise LookupError(f"sweep={sweep}: run {parent.info.run_name!r} is not the parent "
                              "run of a sweep, search or reproduction; give the id the sweep's "
                              "summary prints as 'parent run', or run_id= for a single run"
                              ) from None
        return parent
    ids = experiment_ids(uri, experiment)
    parents = client.search_runs(ids, f"tags.`{tag.JOBS}` != ''",
                                 order_by=["attributes.start_time DESC"], max_results=LOOK_BACK)
    for parent in parents:  # the latest sweep that trained or reused a run
        if reused_runs(parent.data.tags) or client.search_runs(
                ids, f"tags.`{tag.PARENT}` = '{parent.info.run_id}'", max_results=1):
            return parent
    where = f"experiment {experiment!r}" if experiment else f"the store {uri}"
    raise LookupError(f"{where} has no sweep with runs yet; run one with -m "
                      "(python pipelines/train.py -m ...)")


def experiment_ids(uri: str, experiment: str | None) -> list[str]:
    """The id of the experiment named `experiment`, or of every experiment when it is None."""
    client = client_for(uri)
    if experiment is None:
        return [e.experiment_id for e in client.search_experiments()]
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise LookupError(f"tracking.experiment={experiment}: no such experiment in {uri}; "
                          f"there are {', '.join(names) or 'none yet'} (or leave the key out "
                          "for every experiment)")
    return [found.experiment_id]


def _pages(uri: str, experiment_ids: list[str], where: str = ""):
    """The runs the filter finds, a page of 1,000 at a time (MlflowClient.search_runs returns a
    page)."""
    client, token = client_for(uri), None
    while True:
        page = client.search_runs(experiment_ids, where, max_results=1000, page_token=token)
        yield page
        token = page.token
        if not token:
            return


def _all_runs(uri: str, experiment_ids: list[str], where: str) -> list:
    return [run for page in _pages(uri, experiment_ids, where) for run in page]


def _frame(runs: list) -> pd.DataFrame:
    """Runs as the table mlflow.search_runs returns: run_id, experiment_id, status,
    artifact_uri, start_time, end_time (UTC), then metrics.* (last values), params.*, tags.*."""
    def row(run) -> dict:
        info = run.info
        return {"run_id": info.run_id, "experiment_id": info.experiment_id,
                "status": info.status, "artifact_uri": info.artifact_uri,
                "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
                "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True),
                **{f"metrics.{k}": v for k, v in run.data.metrics.items()},
                **{f"params.{k}": v for k, v in run.data.params.items()},
                **{f"tags.{k}": v for k, v in run.data.tags.items()}}

    columns = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    table = pd.DataFrame([row(run) for run in runs], columns=None if runs else columns)
    for column in table.columns:  # a metric a run lacks is NaN; a param or tag, None
        if not column.startswith("metrics.") and table[column].dtype == object:
            table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table


def runs_frame(uri: str, experiment_ids: list[str], parent_run_id: str | None = None) -> pd.DataFrame:
    """Runs as MLflow's search_runs table (params.*, metrics.* = last values, tags.*)."""
    where = f"tags.`{tag.PARENT}` = '{parent_run_id}'" if parent_run_id else ""
    return _frame(_all_runs(uri, experiment_ids, where))


# tag.REUSED, then digitlab.reused.2, .3, …: MLflow keeps 8,000 characters a tag
IDS_PER_TAG = 240  # 240 run ids of 32 characters and their commas fit in one tag's 8,000


def reused_runs(tags: dict[str, str]) -> list[str]:
    """The ids of the FINISHED runs a sweep reused, from its parent's tags."""
    keys = [tag.REUSED] + [f"{tag.REUSED}.{n}" for n in range(2, len(tags) + 2)]
    return [run_id for key in keys if tags.get(key) for run_id in tags[key].split(",")]


LINKED = 40  # reused runs the parent's description links by name; the tags hold them all


@deferred()
def describe_sweep(uri: str, run_id: str, experiment_id: str, about: str,
                   reused: dict[str, str]) -> None:
    """A sweep's parent described in MLflow's description (`about`, then the runs it reused,
    each a link to its run) and tagged with the reused runs' ids ({run id: name}), as many tags
    as their ids need."""
    from mlflow.entities import RunTag

    ids = list(reused)
    chunks = [ids[i:i + IDS_PER_TAG] for i in range(0, len(ids), IDS_PER_TAG)]
    tags = [RunTag(tag.REUSED if n == 1 else f"{tag.REUSED}.{n}", ",".join(chunk))
            for n, chunk in enumerate(chunks, start=1)]
    links = [f"- [{name}]({ui_path(experiment_id, rid)})"
             for rid, name in list(reused.items())[:LINKED]]
    more = len(reused) - len(links)
    told = [f"\n\nThis sweep reused {len(reused)} run(s) FINISHED earlier (the same config, "
            "seed and data; compare.py counts them as this sweep's):", *links] if reused else []
    tags.append(RunTag(tag.NOTE, about + "\n".join(
        told + ([f"- … and {more} more (tag {tag.REUSED})"] if more else []))))
    for i in range(0, len(tags), 100):  # MLflow's log_batch takes up to 100 tags
        client_for(uri).log_batch(run_id, tags=tags[i:i + 100])


def sweep_runs(uri: str, parent) -> pd.DataFrame:
    """The runs of a sweep: its children, plus the runs it reused as already FINISHED."""
    runs = runs_frame(uri, [parent.info.experiment_id], parent.info.run_id)
    reused = reused_runs(parent.data.tags)
    if reused:
        runs = pd.concat([runs, runs_by_id(uri, [parent.info.experiment_id], reused)],
                         ignore_index=True)
    return runs


def metric_history(uri: str, run_id: str, key: str, first_step: int = 0) -> list[float]:
    """A metric's values in step order, from `first_step` (1: the epochs, without a per-layer
    metric's step 0 before training)."""
    points = client_for(uri).get_metric_history(run_id, key)
    return [p.value for p in sorted(points, key=lambda p: p.step) if p.step >= first_step]


@deferred()
def log_files(uri: str, run_id: str, folder: Path, artifact_path: str) -> None:
    client_for(uri).log_artifacts(run_id, str(folder), artifact_path)


@deferred()
def log_table(uri: str, run_id: str, table: pd.DataFrame, artifact_file: str) -> None:
    """A table the MLflow UI shows in its artifact view (and mlflow.load_table reads)."""
    client_for(uri).log_table(run_id, data=table, artifact_file=artifact_file)


def get_run(uri: str, run_id: str):
    return client_for(uri).get_run(run_id)


def download(uri: str, run_id: str, path: str, folder: Path) -> Path:
    """A run's artifact (file or folder) copied into `folder`."""
    return Path(client_for(uri).download_artifacts(run_id, path, str(folder)))


@deferred()
def set_run_tag(uri: str, run_id: str, key: str, value: str) -> None:
    client_for(uri).set_tag(run_id, key, value[:8000])


def runs_by_id(uri: str, experiment_ids: list[str], run_ids: list[str]) -> pd.DataFrame:
    runs = []
    for i in range(0, len(run_ids), 100):  # a search filter of bounded length
        ids = ", ".join(f"'{r}'" for r in run_ids[i:i + 100])
        runs += _all_runs(uri, experiment_ids, f"attributes.run_id IN ({ids})")
    return _frame(runs)


def better_runs(uri: str, run: pd.Series, metric: str, limit: int = 100) -> pd.DataFrame:
    """The FINISHED runs of `run`'s experiment, on its data, with a better `metric`, best first
    (at most `limit`: one bounded search)."""
    from digitlab.directions import lower_is_better

    low = lower_is_better(metric)
    where = (f"attributes.status = 'FINISHED' and metrics.`{metric}` {'<' if low else '>'} "
             f"{float(run[f'metrics.{metric}'])!r} and tags.`{tag.DATA_DIGEST}` = "
             f"'{run.get(f'tags.{tag.DATA_DIGEST}')}'")
    found = client_for(uri).search_runs(
        [run.experiment_id], where, max_results=limit,
        order_by=[f"metrics.`{metric}` {'ASC' if low else 'DESC'}"])
    return _frame(found)


def store_status(uri: str) -> tuple[pd.DataFrame, list]:
    """Runs per experiment and status, and the RUNNING runs whose process is gone (stale)."""
    from collections import Counter

    rows, stale = [], []
    for experiment in client_for(uri).search_experiments():
        counts = Counter()
        # page by page: MLflow has no count, and 5,000 runs read at once take ≈ 0.9 GB
        for page in _pages(uri, [experiment.experiment_id]):
            counts.update(r.info.status for r in page)
            stale += [r for r in page if r.info.status == "RUNNING" and run_is_stale(r)]
        rows.append({"experiment": experiment.name, "runs": sum(counts.values()),
                     **{s: counts[s] for s in ("FINISHED", "FAILED", "KILLED", "RUNNING")}})
    return pd.DataFrame(rows), stale


def artifact_files(uri: str, run_id: str, folder: str) -> dict[str, bytes]:
    """The files directly in a run's artifact folder, by name ({} when it has none)."""
    import tempfile

    client = client_for(uri)
    names = [f.path for f in client.list_artifacts(run_id, folder) if not f.is_dir]
    if not names:
        return {}
    with tempfile.TemporaryDirectory(prefix="digitlab-artifacts-") as tmp:
        return {Path(name).name: Path(client.download_artifacts(run_id, name, tmp)).read_bytes()
                for name in names}
