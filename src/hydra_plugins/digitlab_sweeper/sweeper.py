"""digitlab's sweeper, on Hydra's public Sweeper interface: Hydra's grid (each key's values
crossed, as the basic sweeper crosses them) with each config once, the sweep started (store,
experiment, parent run) before any job, and the jobs of a dead worker launched once more.

train.py's preflight composed and checked every job before Hydra started; its task function
(digitlab.cli.job.TrainCommand) carries those configs, so they are not composed again here, and
receives the started sweep, which every job gets with it.

A joblib worker killed from outside (the out-of-memory killer, a `kill -9`) breaks joblib's whole
process pool: the launcher raises TerminatedWorkerError and the jobs still queued never run.
Here the jobs of the batch that left no outcome (or were KILLED with the pool) are launched again
in a new pool, each at most `LAUNCHES` times; a job whose worker died every time is recorded as
FAILED with that reason, and the sweep goes on. Selected by conf/hydra/sweeper/digitlab.yaml.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Sequence

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

from digitlab.cli.preflight import distinct_jobs, expand_sweep, to_run_config, without_hydra_node
from digitlab.cli.sweep import Sweep, job_folder, outcome_of, start_sweep, write_outcome

log = logging.getLogger("digitlab")
LAUNCHES = 2  # a job is tried again once: a worker killed for another job's memory recovers
LOST_WORKER_ERRORS = ("BrokenProcessPool", "TerminatedWorkerError")  # joblib/loky's pool broke


class DigitlabSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None, prune: str, prune_eta: int,
                 prune_min_epochs: int, prune_metric: str) -> None:
        self.max_batch_size = max_batch_size
        self.halving = None
        if prune != "none":  # a plain sweep, or a single run, does not import it
            from digitlab.halving import Halving

            self.halving = Halving(prune_eta, prune_min_epochs, prune_metric)

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.hydra_context, self.config, self.command = hydra_context, config, task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list:
        jobs, swept = expand_sweep(arguments)
        checked = dict(getattr(self.command, "checked", {}))
        for job in jobs:  # not seen by preflight: composed and checked as Hydra checks them
            if tuple(job) not in checked:
                checked[tuple(job)] = to_run_config(without_hydra_node(
                    self.hydra_context.config_loader.load_sweep_config(self.config, list(job))))
        jobs = distinct_jobs(jobs, checked)
        sweep = start_sweep(self.config, jobs, swept, checked[tuple(jobs[0])])
        OmegaConf.save(self.config, sweep.dir / "multirun.yaml")  # as Hydra's basic sweeper does
        self.command.sweep, self.command.started = sweep, True  # pickled with it to each job
        if self.halving:
            return self._halve(sweep, jobs, checked)
        return self._launch(sweep, jobs, 0)

    def _launch(self, sweep: Sweep, jobs: list[list[str]], first_number: int) -> list:
        returns = []
        for first, batch in batches(jobs, self.max_batch_size):
            results = launch_relaunching_lost(self.launcher, sweep, batch, first_number + first)
            # a job's exception, raised here as Hydra's basic sweeper raises it
            returns.append([result.return_value for result in results])
        return returns

    def _halve(self, sweep: Sweep, jobs: list[list[str]], checked: dict) -> list:
        """Successive halving (digitlab.halving): rung by rung, the configs left launched as one
        batch (all their seeds), then ranked on the runs' scores at the rung's epoch."""
        from digitlab.runner import recipe

        configs: dict[str, list[list[str]]] = {}  # the jobs of each config, its seeds apart
        for job in jobs:
            configs.setdefault(recipe(replace(checked[tuple(job)], seed=0)), []).append(job)
        sweep.rungs = self.halving.rungs(checked[tuple(jobs[0])].trainer.epochs)
        sweep.launches = self.halving.launches(len(configs), len(jobs) // len(configs),
                                               sweep.rungs[-1])
        returns, left, launched = [], list(configs), 0
        for rung, epochs in enumerate(sweep.rungs):
            sweep.rung = rung
            batch = [job for config in left for job in configs[config]]
            returns += self._launch(sweep, batch, launched)
            if rung + 1 < len(sweep.rungs):
                outcomes = {tuple(job): outcome_of(sweep, launched + i)
                            for i, job in enumerate(batch)}
                scores = {config: self._score(sweep, [outcomes[tuple(job)] for job in
                                                      configs[config]], epochs) for config in left}
                survivors = self.halving.survivors(scores)
                print(f"rung {rung + 1} of {len(sweep.rungs)}: the best {len(survivors)} of "
                      f"{len(left)} configs by {self.halving.metric} at epoch {epochs} "
                      f"({', '.join(f'{scores[c]:.4f}' for c in survivors)}) go on to epoch "
                      f"{sweep.rungs[rung + 1]}", flush=True)
                left = survivors
            launched += len(batch)
        return returns

    def _score(self, sweep: Sweep, outcomes: list[dict | None], epochs: int) -> float:
        """The mean of a config's runs' scores at the rung (NaN when a run failed; a job that
        left no outcome is not counted)."""
        from digitlab.halving import RUNG_METRICS
        from digitlab.tracking.queries import metric_history

        key = RUNG_METRICS[self.halving.metric][0]
        values = [self.halving.value(metric_history(sweep.uri, o["run_id"], key, first_step=1),
                                     epochs) if o.get("run_id") else math.nan
                  for o in outcomes if o]
        return sum(values) / len(values) if values else math.nan


def batches(jobs: list[list[str]], max_batch_size: int | None) -> list[tuple[int, list]]:
    """(the first job's number, the jobs) of each batch the launcher gets: all at once, or
    max_batch_size at a time."""
    size = max_batch_size or len(jobs)
    return [(first, jobs[first:first + size]) for first in range(0, len(jobs), size)]


def _lost_worker(exc: BaseException) -> bool:
    return any(cls.__name__ in LOST_WORKER_ERRORS for cls in type(exc).__mro__)


def _runs(indices: list[int]) -> list[list[int]]:
    """[0, 1, 3, 4, 7] → [[0, 1], [3, 4], [7]]: a launcher numbers a batch's jobs consecutively."""
    groups: list[list[int]] = []
    for i in indices:
        if groups and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _ended(sweep: Sweep, job: int) -> bool:
    outcome = outcome_of(sweep, job)  # KILLED: ended with the pool, not by the user
    return outcome is not None and outcome.get("status") != "KILLED"


def launch_relaunching_lost(launcher, sweep: Sweep, batch: Sequence[Sequence[str]],
                            initial_job_idx: int) -> list:
    """The batch launched; the jobs of a broken worker pool launched again in a new one."""
    returns, pending, launches = [], list(range(len(batch))), {i: 0 for i in range(len(batch))}
    for _ in range(LAUNCHES * len(batch)):  # a pool that breaks again and again stops here
        try:
            for group in _runs(pending):
                returns += launcher.launch([batch[i] for i in group],
                                           initial_job_idx=initial_job_idx + group[0])
            return returns
        except Exception as exc:
            if not _lost_worker(exc):
                raise
            lost = [i for i in pending if not _ended(sweep, initial_job_idx + i)]
            log.warning("a worker process died (%s); launching its %d unfinished job(s) "
                        "in new workers", str(exc).splitlines()[0][:200], len(lost))
            pending = []
            for i in lost:
                folder = job_folder(sweep, initial_job_idx + i)
                if folder.exists():  # the job had started: this launch counts, and its
                    launches[i] += 1  # folder is kept aside for the record
                    folder.rename(folder.with_name(f"{folder.name}.worker-lost-{launches[i]}"))
                if launches[i] >= LAUNCHES:
                    _record_lost(sweep, initial_job_idx + i, batch[i])
                else:
                    pending.append(i)
            if not pending:
                return returns
    for i in pending:
        _record_lost(sweep, initial_job_idx + i, batch[i])
    return returns


def _record_lost(sweep: Sweep, job: int, overrides: Sequence[str]) -> None:
    write_outcome(job_folder(sweep, job), {
        "job": job, "overrides": list(overrides), "name": " ".join(overrides),
        "sweep": sweep.token, "status": "FAILED",
        "error": f"its worker process died in each of {LAUNCHES} launches (killed by a signal: "
                 "the out-of-memory killer or a kill); give it more memory or fewer parallel "
                 "jobs"})
