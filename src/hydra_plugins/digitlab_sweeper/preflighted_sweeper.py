"""Hydra's basic sweeper without its second composition of jobs already checked, and with jobs
whose worker process died launched once more. Hydra offers its basic sweeper only as
`hydra._internal.core_plugins.basic_sweeper.BasicSweeper`: this module is the one place that
imports it (tests/test_composition.py fails loudly when Hydra moves it).

Before launching, the basic sweeper composes every job once to fail early, and the launcher then
composes it again to run it. pipelines/train.py's preflight composes and checks every job before
Hydra starts (with one-line errors and exit code 2) and records them in
`digitlab.cli.composition.CHECKED`; those are not composed a second time. Jobs preflight did not
see are checked as Hydra checks them. Selected by conf/hydra/sweeper/preflighted.yaml.

A joblib worker killed from outside (the out-of-memory killer, a `kill -9`) breaks joblib's whole
process pool: the launcher raises TerminatedWorkerError and the jobs still queued never run.
Here the jobs of the batch that left no outcome (or were KILLED with the pool) are launched again
in a new pool, each at most `LAUNCHES` times; a job whose worker died every time is recorded as
FAILED with that reason, and the sweep goes on.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from digitlab.cli import sweep
from digitlab.cli.composition import CHECKED, RESULT_FILE, SWEEP_DIR_ENV, distinct_jobs

log = logging.getLogger("digitlab")
LAUNCHES = 2  # a job is tried again once: a worker killed for another job's memory recovers
LOST_WORKER_ERRORS = ("BrokenProcessPool", "TerminatedWorkerError")  # joblib/loky's pool broke


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


class _RelaunchLostJobs:
    """The sweep's launcher, with the jobs of a broken worker pool launched again."""

    def __init__(self, launcher, config):
        self.launcher, self.config = launcher, config

    def __getattr__(self, name):
        return getattr(self.launcher, name)

    @property
    def sweep_dir(self) -> Path:  # as the sweep callback resolved it
        return Path(os.environ.get(SWEEP_DIR_ENV) or self.config.hydra.sweep.dir)

    def _outcome(self, job_num: int) -> dict | None:
        """The outcome this sweep's job left (not one an earlier sweep left in the folder)."""
        path = self.sweep_dir / str(job_num) / RESULT_FILE
        try:
            outcome = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return outcome if outcome.get("sweep") == _token() else None

    def _ended(self, job_num: int) -> bool:
        outcome = self._outcome(job_num)  # KILLED: ended with the pool, not by the user
        return outcome is not None and outcome.get("status") != "KILLED"

    def launch(self, batch: Sequence[Sequence[str]], initial_job_idx: int):
        returns, pending, launches = [], list(range(len(batch))), {i: 0 for i in range(len(batch))}
        for _ in range(LAUNCHES * len(batch)):  # a pool that breaks again and again stops here
            try:
                for group in _runs(pending):
                    returns += self.launcher.launch([batch[i] for i in group],
                                                    initial_job_idx=initial_job_idx + group[0])
                return returns
            except Exception as exc:
                if not _lost_worker(exc):
                    raise
                lost = [i for i in pending if not self._ended(initial_job_idx + i)]
                log.warning("a worker process died (%s); launching its %d unfinished job(s) "
                            "in new workers", str(exc).splitlines()[0][:200], len(lost))
                pending = []
                for i in lost:
                    folder = self.sweep_dir / str(initial_job_idx + i)
                    if folder.exists():  # the job had started: this launch counts, and its
                        launches[i] += 1  # folder is kept aside for the record
                        folder.rename(folder.with_name(f"{folder.name}.worker-lost-{launches[i]}"))
                    if launches[i] >= LAUNCHES:
                        self._record_lost(initial_job_idx + i, batch[i])
                    else:
                        pending.append(i)
                if not pending:
                    return returns
        for i in pending:
            self._record_lost(initial_job_idx + i, batch[i])
        return returns

    def _record_lost(self, job_num: int, overrides: Sequence[str]) -> None:
        folder = self.sweep_dir / str(job_num)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RESULT_FILE).write_text(json.dumps({
            "job": job_num, "overrides": list(overrides), "name": " ".join(overrides),
            "sweep": _token(), "status": "FAILED", "error": f"its worker process died in each of {LAUNCHES} "
                                         "launches (killed by a signal: the out-of-memory killer "
                                         "or a kill); give it more memory or fewer parallel jobs"}))


def _token() -> str | None:
    return sweep.SWEEP.token if sweep.SWEEP else None


class PreflightedSweeper(BasicSweeper):
    @staticmethod
    def split_arguments(overrides, max_batch_size):
        """The basic sweeper's batches, each config once (composition.distinct_jobs)."""
        jobs = distinct_jobs([job for batch in BasicSweeper.split_arguments(overrides, None)
                              for job in batch])
        size = max_batch_size or len(jobs) or 1
        return [jobs[i:i + size] for i in range(0, len(jobs), size)]

    def setup(self, *, hydra_context, task_function, config) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = _RelaunchLostJobs(self.launcher, config)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if not all(tuple(job) in CHECKED for job in batch):
            super().validate_batch_is_legal(batch)
