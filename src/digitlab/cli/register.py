"""The register command's logic; its usage and what it does: pipelines/register.py."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from digitlab import cli
from digitlab import tags as tag
from digitlab.cli import project
from digitlab.cli.compare import which_sweep
from digitlab.config import ExperimentFilterConfig
from digitlab.directions import DEFAULT_METRIC, best_label, better, lower_is_better


@dataclass
class RegisterConfig:
    run_id: Optional[str] = None  # register this run; null = the best run of a sweep
    # a sweep's parent run id; null = the latest sweep of tracking.experiment (of the store)
    sweep: Optional[str] = None
    # the best run has the best value: the highest accuracy, the lowest loss (digitlab.directions);
    # validation, not test
    metric: str = DEFAULT_METRIC
    name: str = "digitlab"  # the registered model
    alias: str = "champion"  # moved to the new version
    tracking: ExperimentFilterConfig = field(default_factory=ExperimentFilterConfig)
    force: bool = False  # true: move the alias even to a model with a lower `metric`


ConfigStore.instance().store(name="base_register", node=RegisterConfig)


def best_run(uri: str, cfg: RegisterConfig) -> tuple[str, str, float]:
    """(run id, run name, metric value) of the sweep's best FINISHED run."""
    from digitlab.tracking.queries import find_sweep, sweep_runs

    parent = find_sweep(uri, cfg.tracking.experiment, cfg.sweep)
    runs = sweep_runs(uri, parent)
    print(f"registering from {which_sweep(parent, cfg.sweep, cfg.tracking.experiment, runs)}: "
          f"the run with the {'lowest' if lower_is_better(cfg.metric) else 'highest'} "
          f"{cfg.metric}")
    column = f"metrics.{cfg.metric}"
    finished = runs[runs.status == "FINISHED"] if len(runs) else runs
    if finished.empty:
        raise LookupError(f"sweep {parent.info.run_id} has no FINISHED run to register")
    if column not in finished or finished[column].isna().all():
        known = sorted(c.removeprefix("metrics.") for c in finished if c.startswith("metrics."))
        raise LookupError(f"metric={cfg.metric}: no run of sweep {parent.info.run_id} logged it; "
                          f"pick one of {', '.join(known)}")
    best = finished.loc[best_label(finished[column].astype(float), cfg.metric)]
    _say_longer_budget(uri, best, cfg.metric)
    return best.run_id, best["tags.mlflow.runName"], float(best[column])


def _say_longer_budget(uri: str, best, metric: str) -> None:
    """A note when the experiment holds a better FINISHED run of the same config on the same
    data but for another number of epochs: the sweep's best is not the family's best."""
    import pandas as pd

    from digitlab.tracking.queries import better_runs

    epochs = "params.trainer.epochs"
    family = {k: v for k, v in best.items() if k.startswith("params.") and pd.notna(v)
              and k not in (epochs, "params.seed") and not k.startswith("params.tracking.")}
    for _, other in better_runs(uri, best, metric).iterrows():
        if all(other.get(k) == v for k, v in family.items()):
            print(f"note: run {other.run_id} ({other['tags.mlflow.runName']}, not of this sweep) "
                  f"is the same config trained for {other.get(epochs)} epochs, not "
                  f"{best.get(epochs)}, with {metric} {other[f'metrics.{metric}']:.4f} (this "
                  f"sweep's best: {best[f'metrics.{metric}']:.4f}); register it with "
                  f"run_id={other.run_id}")
            return


def check_names(cfg: RegisterConfig) -> None:
    """The model's name and alias as MLflow's registry accepts them, checked before any write."""
    if not cfg.name.strip() or any(c in cfg.name for c in "/:"):
        cli.fail(f"name={cfg.name!r}: a registered model's name is not empty and has no '/' or "
                 "':' (MLflow's rule); e.g. name=digits-mlp")
    if not re.fullmatch(r"[\w-]+", cfg.alias) or re.fullmatch(r"latest|v\d+", cfg.alias.lower()):
        cli.fail(f"alias={cfg.alias!r}: an alias is letters, digits, '_' and '-', and neither "
                 "'latest' nor v<number> (MLflow reserves them); e.g. alias=champion")


def _chosen_run(uri: str, cfg: RegisterConfig) -> tuple[str, str, float | None]:
    """(id, name, metric) of the run given by run_id (FINISHED), or of the best run."""
    from mlflow.exceptions import MlflowException

    from digitlab.tracking.queries import get_run

    if not cfg.run_id:
        try:
            return best_run(uri, cfg)
        except LookupError as exc:
            cli.fail(str(exc))
    try:
        run = get_run(uri, cfg.run_id)
    except MlflowException:
        cli.fail(f"run_id={cfg.run_id}: no such run in {uri}; copy the id from the MLflow UI or "
                 "the sweep summary.")
    if run.info.status != "FINISHED":
        cli.fail(f"run_id={cfg.run_id}: the run is {run.info.status}; only a FINISHED run has a "
                 "complete model to register.")
    return cfg.run_id, run.info.run_name, run.data.metrics.get(cfg.metric)


def run(cfg: RegisterConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    check_names(cfg)
    from mlflow.exceptions import MlflowException

    from digitlab.tracking.model import alias_target, register_run_model
    from digitlab.tracking.queries import get_run

    uri = cli.checked_store(cfg.tracking.uri)
    run_id, run_name, score = _chosen_run(uri, cfg)
    holder = alias_target(uri, cfg.name, cfg.alias)
    if holder == run_id:
        print(f"{cfg.name}@{cfg.alias} is already run {run_id} ({run_name}); nothing to do")
        return
    held = get_run(uri, holder).data.metrics.get(cfg.metric) if holder else None
    if held is not None and (score is None or better(cfg.metric, held, score)) and not cfg.force:
        cli.fail(f"{cfg.name}@{cfg.alias} is run {holder} with {cfg.metric} {held:.4f}; run "
                 f"{run_id} ({run_name}) has {'none' if score is None else f'{score:.4f}'}, so "
                 "the alias stays; force=true moves it anyway.")
    tags = {tag.RUN_NAME: run_name}
    if score is not None:
        tags[f"digitlab.{cfg.metric}"] = str(score)
    try:
        version, created = register_run_model(uri, run_id, cfg.name, cfg.alias, tags)
    except LookupError as exc:
        cli.fail(f"{exc}: a run that failed or was logged without a model cannot be registered; "
                    "pick another with run_id=<id>.")
    except MlflowException as exc:  # the registry's own refusal
        cli.fail(f"name={cfg.name} alias={cfg.alias}: {exc.message.splitlines()[0]}")
    print(f"{cfg.name} version {version} ({'new' if created else 'existing'}) ← run {run_id} "
          f"({run_name}, {cfg.metric} {score if score is None else f'{score:.4f}'})")
    print(f"{cfg.name}@{cfg.alias} → version {version}")
    model = shlex.quote(f"models:/{cfg.name}@{cfg.alias}")  # pasted into a shell as printed
    print(f"serve: MLFLOW_TRACKING_URI={shlex.quote(uri)} {project.mlflow()} models predict "
          f"-m {model} -i pixels.csv -t csv --env-manager local\n"
          f"       (pixels.csv: {project.pipeline('export_kaggle_csv.py')} dataset=digits "
          "labels=false out=pixels.csv writes the digits' images)")

