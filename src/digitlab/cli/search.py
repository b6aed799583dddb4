"""The search command's logic; its usage and what it does: pipelines/search.py."""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra import compose
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from digitlab import cli
from digitlab import tags as tag
from digitlab.config import ConfigError, ExperimentStoreConfig, RunConfig
from digitlab.directions import DEFAULT_METRIC, lower_is_better
from digitlab.files import sqlite_path, sqlite_uri
from digitlab.runner import FINAL_METRICS

log = logging.getLogger("digitlab.search")
KINDS = ("int", "float", "categorical")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "halving", "hyperband")
# what a trial reports after each epoch for a pruner: the validation score in the study's
# direction (never a test score: the test set stays unseen)
EPOCH_VALUE = {"best_val_accuracy": "val_accuracy", "test_accuracy": "val_accuracy",
               "test_loss": "val_loss"}


@dataclass
class SearchConfig:
    # the Optuna study (and the MLflow parent run's tag); same name = resume
    study: str = "digitlab-search"
    n_trials: int = 20  # finished trials wanted in the study (across interruptions)
    # an Optuna storage URL; null: sqlite:///<project>/mlruns/optuna.db
    storage: Optional[str] = None
    # what the search optimises (validation: the test set stays unseen); fixed for the study
    metric: str = DEFAULT_METRIC
    # maximize | minimize; null: the metric's own (losses and durations minimize)
    direction: Optional[str] = None
    sampler: str = "tpe"  # tpe (Bayesian) | random | grid (categorical dimensions only)
    # stop a trial whose validation score per epoch trails the others (Optuna's pruners):
    # none | median | halving (successive halving) | hyperband
    pruner: str = "none"
    seed: int = 0  # the sampler's seed; each trial's training seed is `seed` in overrides
    space: Dict[str, Any] = field(default_factory=dict)
    # fixed train overrides for every trial: "overrides=['data=fashion_mnist']"
    overrides: List[str] = field(default_factory=list)
    tracking: ExperimentStoreConfig = field(
        default_factory=lambda: ExperimentStoreConfig(experiment="search"))


ConfigStore.instance().store(name="base_search", node=SearchConfig)


def flatten_space(node: dict, prefix: str = "") -> dict[str, Any]:
    """{model: {hidden: {type: …}}} → {"model.hidden": {type: …}}: a leaf is a dict with a type."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict) and "type" not in value:
            flat.update(flatten_space(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_space(space: dict) -> None:
    """Every dimension is {type: int|float, low, high[, log, step]} or {type: categorical,
    choices: [...]}; anything else is a one-line error."""
    if not space:
        raise ConfigError("space: empty; give at least one dimension, e.g. "
                          "'+space.model.hidden={type:int,low:16,high:256,log:true}'")
    for name, spec in space.items():
        where = f"space.{name}"
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in KINDS:
            raise ConfigError(f"{where}: type={kind!r}; use one of {', '.join(KINDS)}, e.g. "
                              "{type: float, low: 0.01, high: 1, log: true}")
        if kind == "categorical":
            if not spec.get("choices"):
                raise ConfigError(f"{where}: a categorical dimension needs choices: [a, b, …]")
            continue
        low, high = spec.get("low"), spec.get("high")
        for key in ("low", "high", "step"):
            value = spec.get(key)
            finite = (isinstance(value, (int, float)) and not isinstance(value, bool)
                      and math.isfinite(value))
            if value is not None and not finite:  # inf would be sampled; abc fails in Optuna
                raise ConfigError(f"{where}: {key}={value!r}; give a finite number")
        if low is None or high is None or not low < high:
            raise ConfigError(f"{where}: needs low < high, got low={low} high={high}")
        if spec.get("log") and low <= 0:
            raise ConfigError(f"{where}: log=true needs low > 0, got low={low}")
        unknown = set(spec) - {"type", "low", "high", "log", "step"}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; a "
                              f"{kind} dimension takes low, high, log and step")
        try:  # the distribution Optuna will sample: its own checks (step with log, …)
            _distribution(spec)
        except ValueError as exc:
            raise ConfigError(f"{where}: {cli.one_line(exc)}") from None


def _distribution(spec: dict):
    from optuna.distributions import FloatDistribution, IntDistribution

    if spec["type"] == "int":
        return IntDistribution(int(spec["low"]), int(spec["high"]),
                               log=bool(spec.get("log", False)), step=int(spec.get("step") or 1))
    return FloatDistribution(float(spec["low"]), float(spec["high"]),
                             log=bool(spec.get("log", False)), step=spec.get("step"))


def suggest(trial, space: dict) -> dict[str, Any]:
    values = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "categorical":
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif kind == "int":
            values[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]),
                                             step=int(spec.get("step") or 1),
                                             log=bool(spec.get("log", False)))
        else:
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               step=spec.get("step"),
                                               log=bool(spec.get("log", False)))
    return values


def trial_config(cfg: SearchConfig, values: dict[str, Any]) -> RunConfig:
    overrides = [f"{name}={value}" for name, value in values.items()] + list(cfg.overrides)
    run_cfg = cli.to_run_config(compose(config_name="train", overrides=overrides))
    run_cfg.tracking.skip_finished = False  # every trial is its own child run
    # the trial's logged params say where it is: the search's store and experiment
    run_cfg.tracking.uri, run_cfg.tracking.experiment = cfg.tracking.uri, cfg.tracking.experiment
    return run_cfg


def preflight(cfg: SearchConfig) -> None:
    """Both corners of the space compose into valid run configs before anything starts."""
    check_space(cfg.space)
    if not cfg.study.strip() or any(q in cfg.study for q in "'\"`"):
        raise ConfigError(f"study={cfg.study!r}: give a non-empty name without quotes or "
                          "backticks (MLflow's search filters cannot match them)")
    _choice("sampler", cfg.sampler, SAMPLERS)
    _choice("metric", cfg.metric, FINAL_METRICS)
    _choice("pruner", cfg.pruner, PRUNERS)
    if cfg.pruner != "none" and cfg.metric not in EPOCH_VALUE:
        raise ConfigError(f"pruner={cfg.pruner}: a pruner compares trials epoch by epoch on a "
                          f"validation score, and {cfg.metric} has none; give metric= one of "
                          f"{', '.join(EPOCH_VALUE)}, or pruner=none")
    metric_direction = _direction_of(cfg.metric)
    if cfg.direction is None:
        cfg.direction = metric_direction
    _choice("direction", cfg.direction, ("maximize", "minimize"))
    if cfg.direction != metric_direction:
        raise ConfigError(f"direction={cfg.direction}: {cfg.metric} is better "
                          f"{'lower' if metric_direction == 'minimize' else 'higher'}; give "
                          f"direction={metric_direction} or leave it out")
    if cfg.n_trials < 1:
        raise ConfigError(f"n_trials={cfg.n_trials}: give an integer ≥ 1")
    if cfg.sampler == "grid" and any(s["type"] != "categorical" for s in cfg.space.values()):
        raise ConfigError("sampler=grid: every dimension must be categorical (choices: [...])")
    for corner in ("low", "high"):
        values = {name: (spec["choices"][0 if corner == "low" else -1]
                         if spec["type"] == "categorical" else spec[corner])
                  for name, spec in cfg.space.items()}
        try:
            run_cfg = trial_config(cfg, values)
        except ConfigError:
            raise
        except Exception as exc:  # hydra: an unknown key or group
            raise ConfigError(f"space/overrides: {cli.one_line(exc)}") from None
        if cfg.pruner != "none" and run_cfg.data.val_mode == "none":
            raise ConfigError(f"pruner={cfg.pruner}: the trials have no validation set "
                              "(data.val_mode=none) to be pruned on; give data.val_mode="
                              "stratified in overrides, or pruner=none")


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except ArgumentError:  # not a database URL: Optuna says so
        return None


def masked(text: str, url: str | None = None) -> str:
    """`text` with the password of the database URL `url` (default: `text` itself) as ***, as
    SQLAlchemy shows a URL: for every line printed or raised."""
    password = _password(url or text)
    return text.replace(f":{password}@", ":***@").replace(password, "***") if password else text


def without_password(url: str) -> str:
    """The storage URL as a run's tag keeps it: with no password (the database's own login,
    PGPASSWORD or ~/.pgpass, supplies it when compare opens the study)."""
    return masked(url).replace(":***@", "@")


def open_study(cfg: SearchConfig, storage: str):
    """The study in `storage` (a SQLite file's folder is created as the MLflow store's is), or
    one line and exit 2 when the storage cannot be opened."""
    import optuna

    db = sqlite_path(storage)
    if db is not None:
        cli.check_writable(db.parent, "storage")
        db.parent.mkdir(parents=True, exist_ok=True)
    try:
        study = optuna.create_study(study_name=cfg.study, storage=storage, load_if_exists=True,
                                    direction=cfg.direction, pruner=make_pruner(cfg))
    except Exception as exc:  # SQLAlchemy's errors for a URL it cannot open, a corrupt file
        reason = str(exc).splitlines()[0]
        cli.fail(f"storage={masked(storage)}: cannot open the study ({masked(reason, storage)}); "
                    "give a writable sqlite:////path/optuna.db or another database URL.")
    _keep_objective(study, cfg)
    return study


def _keep_objective(study, cfg: SearchConfig) -> None:
    """A study's metric and direction are those it was created with: a resume that names others
    is refused (its trials' values would mix two objectives)."""
    metric = study.user_attrs.get("metric")
    direction = study.direction.name.lower()
    if metric is None:  # a new study (or one made before its metric was kept)
        study.set_user_attr("metric", cfg.metric)
        metric = cfg.metric
    if (metric, direction) != (cfg.metric, cfg.direction):
        cli.fail(f"study={cfg.study}: it optimises {metric} ({direction}) and this command asks "
                 f"for {cfg.metric} ({cfg.direction}); resume it with metric={metric}, or "
                 "start another with study=<new name>")


def _direction_of(metric: str) -> str:
    return "minimize" if lower_is_better(metric) else "maximize"


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r}: use one of {', '.join(allowed)}")


def make_sampler(cfg: SearchConfig, trials_so_far: int = 0):
    """The sampler, seeded by `seed` and the number of trials the study already has: a resumed
    search draws new parameters instead of replaying the first trials' draws."""
    import numpy as np
    import optuna

    seed = int(np.random.SeedSequence([cfg.seed, trials_so_far]).generate_state(1)[0])

    if cfg.sampler == "grid":
        return optuna.samplers.GridSampler(
            {name: list(spec["choices"]) for name, spec in cfg.space.items()}, seed=seed)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(cfg: SearchConfig):
    """Optuna's own pruner, with its defaults (`none`: Optuna's NopPruner)."""
    import optuna

    return {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
            "halving": optuna.pruners.SuccessiveHalvingPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[cfg.pruner]()


def interrupted(trial) -> bool:
    """A trial cut off by a stop, a crash or a kill: failed without an error of its own."""
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and "error" not in trial.user_attrs


def recover_interrupted(study) -> list[int]:
    """Trials cut off by a crash or kill: RUNNING in the study although their process is gone, or
    failed without an error of their own. Each is failed (if still RUNNING) and enqueued once
    more with the same parameters. Returns their numbers."""
    from optuna.trial import TrialState

    from digitlab.tracking.store import process_alive

    recovered = []
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for trial in trials:
        attrs = trial.user_attrs
        stale = trial.state == TrialState.RUNNING and not process_alive(
            attrs.get("host"), attrs.get("pid"))
        if stale:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        if (stale or interrupted(trial)) and trial.number not in retried and trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number},
                                skip_if_exists=False)
            recovered.append(trial.number)
    return recovered


def counted(study) -> int:
    """The trials that count toward n_trials: the COMPLETE ones and those a pruner stopped (a
    failed trial is no result)."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED))


def optimize(study, objective, n_trials: int) -> None:
    """Trials until `n_trials` are COMPLETE; `n_trials` failures in a row end the search (the
    space fails wherever it is tried), as does a grid with no point left."""
    from optuna.samplers import GridSampler

    failures, complete = 0, counted(study)
    while complete < n_trials and failures < n_trials:
        if isinstance(study.sampler, GridSampler) and study.sampler.is_exhausted(study):
            return
        study.optimize(objective, n_trials=1, catch=(Exception,))
        now = counted(study)  # one read of the study's trials a trial
        failures, complete = (0 if now > complete else failures + 1), now


def _pruned(trial, value: float, record) -> bool:
    """The epoch's validation score reported to the trial; Optuna's pruner decides."""
    from digitlab import stopping

    with stopping.deferred():  # the study is a store too
        trial.report(value, record.epoch)
    return trial.should_prune()


def make_objective(cfg: SearchConfig, uri: str, experiment_id: str, parent: str):
    import optuna

    from digitlab import runner, stopping
    from digitlab.tracking.runs import MlflowTracker

    tracker = MlflowTracker(uri, experiment_id, parent)

    def objective(trial) -> float:
        with stopping.deferred():  # the study is a SQLite store too
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", str(os.getpid()))
        name = f"trial {trial.number}"
        try:
            values = suggest(trial, cfg.space)
            name += ": " + " ".join(
                f"{k.split('.')[-1]}={v:.4g}" if isinstance(v, float)
                else f"{k.split('.')[-1]}={v}" for k, v in values.items())
            tags = {tag.STUDY: cfg.study, tag.TRIAL: str(trial.number),
                    tag.OVERRIDES: " ".join(f"{k}={v}" for k, v in values.items()),
                    **cli.git_state()}
            stop_when = None if cfg.pruner == "none" else (
                lambda record: _pruned(trial, getattr(record, EPOCH_VALUE[cfg.metric]), record))
            result = runner.run(trial_config(cfg, values), tracker, name, tags,
                                stop_when=stop_when)
            with stopping.deferred():
                trial.set_user_attr("mlflow_run_id", result.run_id)
            if result.stopped_at:
                log.info("%s: pruned after epoch %d", name, result.stopped_at)
                raise optuna.TrialPruned(f"pruned after epoch {result.stopped_at}")
            value = result.metrics.get(cfg.metric)
            if value is None or not math.isfinite(value):
                raise ValueError(f"the run logged no finite {cfg.metric}")
        except optuna.TrialPruned:
            raise
        except (Exception, KeyboardInterrupt, stopping.Terminated) as exc:
            with stopping.deferred():
                if not isinstance(exc, Exception):  # cut off: recover_interrupted reruns it
                    trial.set_user_attr("interrupted", True)
                else:  # an error of its own: the trial counts, and is not run again
                    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:1000])
                    log.error("%s: FAILED (%s: %s)", name, type(exc).__name__, exc)
            raise
        log.info("%s: %s %.4f", name, cfg.metric, value)
        return value

    return objective


def run(cfg: SearchConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    import optuna

    from digitlab import stopping
    from digitlab.tracking.runs import end_run, resume_parent_run
    from digitlab.tracking.store import resolve_uri

    cfg = OmegaConf.to_object(cfg)
    cfg.space = flatten_space(cfg.space)
    try:
        preflight(cfg)
    except ConfigError as exc:
        cli.fail(str(exc))
    uri = resolve_uri(cfg.tracking.uri, cli.project_root())
    storage = cfg.storage or sqlite_uri(cli.project_root() / "mlruns" / "optuna.db")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(cfg, storage)
    study.sampler = make_sampler(cfg, len(study.get_trials(deepcopy=False)))
    recovered = recover_interrupted(study)
    experiment_id = cli.prepare_store(uri, cfg.tracking.experiment)
    # a parent run is one study's: its name and its storage (a password is never kept)
    parent, resumed = resume_parent_run(
        uri, experiment_id, {tag.STUDY: cfg.study, tag.STORAGE: without_password(storage)},
        f"search {cfg.study}",
        {tag.N_TRIALS: str(cfg.n_trials), tag.METRIC: cfg.metric, **cli.git_state()})
    done = counted(study)
    print(f"study {cfg.study!r} in {masked(storage)}: {done} of {cfg.n_trials} trials complete"
          + (f", resuming (rerunning cut-off trial(s) {recovered})" if recovered else "")
          + f"; MLflow parent run {parent}" + (" (resumed)" if resumed else ""))
    stopping.install()
    status = "FINISHED"
    try:
        optimize(study, make_objective(cfg, uri, experiment_id, parent), cfg.n_trials)
    except (KeyboardInterrupt, stopping.Terminated):
        status = "KILLED"
    finally:
        end_run(uri, parent, status)
    complete = report(study, cfg, uri, parent)
    if status == "KILLED":
        print("interrupted: run the same command again to resume", file=sys.stderr)
        stopping.recorded()
        sys.exit(130)
    if not complete:  # every trial failed: there is no result
        sys.exit(1)


def report(study, cfg: SearchConfig, uri: str, parent: str) -> int:
    """Prints the trials' outcome and the best trial; tags the best child run and the parent.
    Returns how many trials are complete."""
    from optuna.trial import TrialState

    from digitlab.tracking.queries import get_run, set_run_tag

    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(1 for t in trials if t.state == s) for s in TrialState}
    failed = [t for t in trials if t.state == TrialState.FAIL and not interrupted(t)]
    pruned = f" ({states['PRUNED']} stopped by the pruner)" if states["PRUNED"] else ""
    print(f"{counted(study)} of {cfg.n_trials} trials complete{pruned}, "
          f"{len(failed)} failed" + "".join(f"\n  trial {t.number} failed: "
                                              f"{t.user_attrs.get('error', '?')}" for t in failed))
    if not states["COMPLETE"]:
        return 0
    best = study.best_trial
    run_id = best.user_attrs.get("mlflow_run_id", "")
    previous = get_run(uri, parent).data.tags.get(tag.BEST_RUN_ID)
    if previous and previous != run_id:
        set_run_tag(uri, previous, tag.BEST, "false")
    if run_id:
        set_run_tag(uri, run_id, tag.BEST, "true")
    for key, value in {tag.BEST_TRIAL: str(best.number), tag.BEST_RUN_ID: run_id,
                       f"digitlab.best_{cfg.metric}": f"{best.value:.6g}"}.items():
        set_run_tag(uri, parent, key, value)
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in best.params.items())
    print(f"best: trial {best.number}  {cfg.metric}={best.value:.4f}  {params}  run {run_id}")
    return states["COMPLETE"]

