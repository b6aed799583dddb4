"""train.py's command (every job checked, then one run or a sweep through Hydra, the sweep ended
whatever happened, the exit code), its task function, and one job, a single run or one of a
sweep: its config typed, trained through the runner, tracked, and its outcome left where the
sweep's main process reads it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from digitlab import tags as tag
from digitlab.cli import project
from digitlab.cli.preflight import preflight, prepare_store, to_run_config
from digitlab.cli.project import (
    EXIT_BAD_INPUT,
    conf_dir,
    fail,
    git_state,
    log,
    prepare_process,
    project_root,
)
from digitlab.cli.sweep import (
    Sweep,
    end_with_driver,
    finish_sweep,
    job_folder,
    mark_store_lost,
    progress,
    store_lost,
    write_outcome,
)
from digitlab.config import ConfigError, RunConfig
from digitlab.stopping import Terminated, install, recorded


def _run_name(overrides: list[str], keys: list[str] | None = None) -> str:
    # model.hidden=64 optim.lr=0.1 seed=2 → "hidden=64 lr=0.1 seed=2"; in a sweep, swept keys only
    parts = [o.split("=", 1) for o in overrides
             if "=" in o and not o.lstrip("+~").startswith(("hydra", "tracking."))]
    if keys:
        parts = [(k, v) for k, v in parts if k.lstrip("+~") in keys]
    return " ".join(f"{k.split('.')[-1].lstrip('+~')}={v}" for k, v in parts) or "run"


def _thread_limit(hc) -> int | None:
    """One BLAS thread per parallel job so n_jobs workers don't oversubscribe the cores."""
    from joblib import effective_n_jobs

    n_jobs = OmegaConf.select(hc, "launcher.n_jobs", default=None)
    if hc.mode != RunMode.MULTIRUN or n_jobs in (None, 1):
        return None
    jobs = effective_n_jobs(int(n_jobs))  # as joblib reads it: −1 every core, −2 all but one
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def main(argv: list[str]) -> int:
    """The exit code: 0 every run finished, 1 a run failed, 2 bad input, 130 Ctrl-C, 143
    SIGTERM. Hydra reads the command line from sys.argv, which must hold `argv`."""
    prepare_process()
    install()  # Ctrl-C and SIGTERM end the run KILLED, never in the middle of a store write
    command, status = TrainCommand(), 1
    try:
        command.checked = preflight(argv, "train")
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(
            command)()
        status = 0
    except KeyboardInterrupt:
        status = 130
    except Terminated:
        status = 143
    except SystemExit as exc:  # Hydra reports a bad override or config with exit code 1
        status = EXIT_BAD_INPUT if exc.code == 1 and not command.started else exc.code
    finally:  # the sweep's parent run is ended whatever happened
        summary = finish_sweep(command.sweep, command.started,
                               interrupted=status in (130, 143))
    if status in (130, 143):
        recorded()
    return status or summary


@dataclass
class TrainCommand:
    """train.py's task function, as Hydra calls it for each job: it carries the configs preflight
    checked and, once a sweep began, the sweep its jobs belong to (Hydra pickles it to joblib
    and Ray workers with that sweep)."""

    checked: dict[tuple[str, ...], RunConfig] = field(default_factory=dict)
    sweep: Sweep | None = None
    started: bool = False  # a job or the sweep began: an error after this is not the command line's

    def __call__(self, cfg: DictConfig) -> dict:
        prepare_process()  # a Ray worker inherits nothing from the command's process
        self.started = True
        return run_job(cfg, self.sweep)


def run_job(cfg: DictConfig, sweep: Sweep | None) -> dict:
    """One job, alone or of `sweep`: validate, train, log; leaves the job's outcome where the
    sweep's main process reads it."""
    from digitlab import stopping

    hc = HydraConfig.get()
    out_dir = job_folder(sweep, hc.job.num) if sweep else Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    try:
        run_cfg = to_run_config(cfg)
    except ConfigError as exc:
        fail(str(exc))
    stopping.install(signal.SIGTERM)  # also inside joblib workers
    if sweep:
        end_with_driver(sweep.driver_pid)
    name = _run_name(overrides, sweep.swept if sweep else None)
    tags = {tag.OVERRIDES: " ".join(overrides), **git_state()}
    dataset = None if sweep else _read_data(run_cfg)  # a single run's bad data touches no store
    uri, tracker = _tracker(run_cfg, sweep, name)
    if sweep and uri:
        tags.update({tag.SWEEP_ID: sweep.parent_run_id or "",
                     tag.JOB: str(hc.job.num)})
    if sweep and sweep.rungs:
        tags[tag.RUNG] = str(sweep.rung + 1)
    outcome = {"job": hc.job.num if sweep else 0, "overrides": overrides, "name": name,
               "status": "FAILED", "sweep": sweep.token if sweep else None}
    lost, code = (store_lost(sweep) if sweep else None), 1
    if lost:  # an earlier job of this sweep found the tracking server gone
        outcome["error"] = f"not run: {lost}"
    else:
        try:
            code = _train(run_cfg, tracker, name, tags, out_dir, hc, sweep, uri, outcome,
                          dataset)
        except BaseException:  # Ctrl-C / SIGTERM: the run is KILLED; stop everything
            outcome["status"] = "KILLED"
            write_outcome(out_dir, outcome)
            raise
    if sweep and outcome.get("error") and not lost:  # a single run says it once, on exit
        log.error("%s%s: %s", progress(sweep, outcome["status"]), name, outcome["error"])
    if not sweep and outcome.get("run_id") and uri:
        print(where_to_find(uri, tracker.experiment_id, outcome["run_id"]))
    write_outcome(out_dir, outcome)
    if outcome.get("error") and not sweep:
        print(f"digitlab: error: {outcome['error']}", file=sys.stderr)
        sys.exit(code)
    return outcome


def _read_data(run_cfg: RunConfig):
    """The run's data, read and checked before its store is opened: bad data is one line and
    exit 2, with no experiment or store made for it."""
    from digitlab.data.errors import DataError
    from digitlab.data.sources import load_dataset

    print(f"reading {run_cfg.data.name} …", flush=True)
    try:
        return load_dataset(run_cfg.data)
    except DataError as exc:
        fail(str(exc))


def _tracker(run_cfg: RunConfig, sweep: Sweep | None, name: str):
    """(the store's URI, the tracker the run logs through): the sweep's store and parent run,
    or the run's own; (None, a tracker that records nothing) with tracking off."""
    from digitlab import runner

    if not run_cfg.tracking.enabled:
        return None, runner.NullTracker()
    from digitlab.tracking.runs import MlflowTracker
    from digitlab.tracking.store import resolve_uri

    uri = (sweep and sweep.uri) or resolve_uri(run_cfg.tracking.uri, project_root())
    if not sweep:  # MLflow's import and the store's check take seconds
        print(f"{name}: recorded in {uri}, experiment {run_cfg.tracking.experiment}", flush=True)
    experiment_id = (sweep and sweep.experiment_id) or prepare_store(
        uri, run_cfg.tracking.experiment)
    parent = (sweep and sweep.parent_run_id) or run_cfg.tracking.parent_run_id
    return uri, MlflowTracker(uri, experiment_id, parent)


def _train(run_cfg: RunConfig, tracker, name: str, tags: dict, out_dir: Path, hc,
           sweep: Sweep | None, uri: str | None, outcome: dict, dataset=None) -> int:
    """The run trained and logged; `outcome` says how it ended (an error as one line). The
    exit code: 0, 2 for bad input (the data, a config value), 1 otherwise."""
    from threadpoolctl import threadpool_limits

    from digitlab import runner
    from digitlab.data.errors import DataError
    from digitlab.tracking.store import describe
    from digitlab.training import TrainingDiverged

    try:
        with threadpool_limits(limits=_thread_limit(hc)), _progress(run_cfg, bool(sweep)) as shown:
            result = runner.run(run_cfg, tracker, name, tags, out_dir,
                                {"hydra": Path(hc.runtime.output_dir) / ".hydra"}, shown,
                                dataset, until=sweep and sweep.until)
        outcome.update(status="SKIPPED" if result.skipped else "FINISHED", run_id=result.run_id,
                       metrics=result.metrics, epochs_trained=result.epochs_trained,
                       stopped_at=result.stopped_at)
        counted = progress(sweep, outcome["status"]) if sweep else ""
        log.info("%s%s: %s%s%s", counted, name, "already FINISHED as run %s, skipped "
                 "(tracking.skip_finished=false runs it again): " % result.run_id
                 if result.skipped else "", _summary(result.metrics),
                 f"  (stopped at epoch {result.stopped_at})" if result.stopped_at else "")
        return 0
    except (DataError, ConfigError) as exc:
        outcome["error"] = str(exc)
        return EXIT_BAD_INPUT
    except TrainingDiverged as exc:
        outcome["error"] = str(exc)
    except Exception as exc:  # recorded as FAILED; a sweep goes on with its other jobs
        fault = describe(exc, store=uri)
        if fault is None:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("job failed")
        else:  # the machine's or the store's fault: one line, no traceback
            outcome["error"] = fault.line
            if fault.kind in ("server_gone", "store_gone") and sweep:
                mark_store_lost(sweep, fault.line)
    return 1


def where_to_find(uri: str, experiment_id: str, run_id: str) -> str:
    """How to open a single run, and the commands that take its id."""
    from digitlab.tracking.store import ui_path

    ui = project.ui_page(uri, ui_path(experiment_id, run_id))
    store = project.store_arg(uri)
    return (f"run {run_id}\n  open it:  {ui}\n"
            f"  rerun it: {project.pipeline(f'rerun.py run_id={run_id}')}{store}\n"
            f"  register: {project.pipeline(f'register.py run_id={run_id}')}{store}")


def _summary(metrics: dict[str, float]) -> str:
    keys = ("best_val_accuracy", "test_accuracy", "best_epoch", "train_seconds")
    return "  ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)


epochs = logging.getLogger("digitlab.epochs")

ROWS_EVERY = 10.0  # seconds between plain "rows done" lines of a long pass (not a terminal)


class _progress:
    """What a run shows as it goes. In a terminal: tqdm bars over epochs and, for a pass that
    takes more than 2 s, over its rows. Otherwise plain lines: a single run prints its steps,
    epochs and, every 10 s of a long pass, its rows; a sweep keeps them in each job's log file
    and prints one line per run."""

    def __init__(self, cfg: RunConfig, multirun: bool):
        self.total = cfg.trainer.epochs
        self.multirun = multirun
        self.epoch_started = self.last_line = 0.0

    def __enter__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="epoch", leave=False, disable=None)
        self.rows_bar = None
        return self

    def _say(self, line: str) -> None:
        epochs.info(line)  # the job's log file (conf/hydra/job_logging/digitlab.yaml)
        if self.multirun:  # a sweep prints a line a run
            return
        if self.bar.disable:
            print(line, flush=True)
        else:
            self.bar.write(line)

    def step(self, what: str) -> None:
        self._say(f"{what} …")
        self.epoch_started = self.last_line = time.monotonic()

    def rows(self, done: int, total: int) -> None:
        if not self.bar.disable:
            if self.rows_bar is None:
                from tqdm import tqdm

                self.rows_bar = tqdm(total=total, unit="row", leave=False, delay=2,
                                     desc=f"epoch {self.bar.n + 1}")
            self.rows_bar.update(done - self.rows_bar.n)
            return
        now = time.monotonic()
        if now - self.last_line >= ROWS_EVERY and done < total:
            self.last_line = now
            self._say(f"epoch {self.bar.n + 1}/{self.total}: {done:,} of {total:,} rows "
                      f"({done / total:.0%}), {now - self.epoch_started:.0f} s")

    def epoch(self, record) -> None:
        if self.rows_bar is not None:
            self.rows_bar.close()
            self.rows_bar = None
        line = "epoch %d/%d  %s" % (record.epoch, self.total, "  ".join(
            f"{k}={v:.4g}" for k, v in record.metrics().items()
            if k not in record.layers))  # the per-layer ones are in the store and report
        if self.bar.disable:
            self._say(line)
        else:
            epochs.info(line)
            self.bar.set_postfix(loss=f"{record.train_loss:.4f}",
                                 val=f"{record.val_accuracy or float('nan'):.4f}")
            self.bar.update()
        self.epoch_started = self.last_line = time.monotonic()

    def __exit__(self, *exc) -> None:
        if self.rows_bar is not None:
            self.rows_bar.close()
        self.bar.close()
