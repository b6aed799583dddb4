"""A run's per-epoch metrics: each epoch on disk at once, in the store in batches.

A store write costs ≈ 4–5 ms (two SQLite transactions through MLflow), longer than a digits
epoch takes to train. So a run's first epoch goes to the store at once, later ones when
WRITE_SECONDS have passed since the last write, and whatever is left when the epoch loop ends
goes in one write with the run's final metrics (or, if the run is stopped or fails, before it
ends). Epochs of seconds each are therefore written one by one, as they end.

Batching loses nothing because every epoch is first appended to the run's journal file, and on
disk (fdatasync, or fsync where there is none) before the next epoch starts. If the process is
killed outright, the reaper that marks its run KILLED writes the journal's epochs to the store
first (`replay`). MLflow keeps one row per identical metric, so an epoch both in the store and
in the journal is stored once. A journal that cannot be written (no space, no folder) turns
batching off: each epoch then goes to the store as it ends.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from mlflow.entities import Metric

from digitlab.files import cache_root, private_file, private_folder

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

# MLflow's documented limit of one log_batch request (REST API, Log Batch: 1000 metrics)
MAX_METRICS_PER_BATCH = 1000
WRITE_SECONDS = 1.0  # how far the store may lag a run's epochs: the MLflow UI shows them this late


def sync_data(fd: int) -> None:
    """The file's data on disk: fdatasync where the platform has it (Linux), else fsync
    (macOS has no fdatasync)."""
    getattr(os, "fdatasync", os.fsync)(fd)


# the run's tag naming its journal's folder: a command with another DIGITLAB_CACHE that reaps the
# run still finds the journal


def journal_folder() -> Path:
    """Where this process keeps its runs' journals: per user and machine, as the reaper is."""
    return cache_root() / "epoch-journals"


def journal_path(run_id: str, folder: str | Path | None = None) -> Path:
    """A run's journal, in `folder` (its tag.JOURNAL_DIR) or this process's journal folder."""
    return Path(folder or journal_folder()) / f"{run_id}.jsonl"


def _write(client: MlflowClient, run_id: str, metrics: list[Metric]) -> None:
    for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + MAX_METRICS_PER_BATCH])


class EpochMetrics:
    """The per-epoch metrics of one run, journaled and written as the module says."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id
        self.pending: list[Metric] = []
        self.last_write: float | None = None  # monotonic seconds; None before the first epoch
        self.path = journal_path(run_id)
        self._journal: int | None = None  # its file descriptor, once opened
        self._batching = True

    def add(self, metrics: list[Metric]) -> None:
        """One epoch's metrics: journaled, then written if the store is due a write."""
        if self._batching:
            self._append(metrics)
        self.pending.extend(metrics)
        due = (self.last_write is None or not self._batching
               or time.monotonic() - self.last_write >= WRITE_SECONDS)
        if due:
            self.write()

    def write(self, extra: Iterable[Metric] = ()) -> None:
        """Every pending epoch, and `extra`, in the store now."""
        batch = [*self.pending, *extra]
        if batch:
            _write(self.client, self.run_id, batch)
        self.pending.clear()
        self.last_write = time.monotonic()

    def close(self) -> None:
        """The journal removed: call once nothing is pending (what is, stays for the reaper)."""
        if self._journal is None:
            return
        os.close(self._journal)
        self._journal = None
        if not self.pending:
            self.path.unlink(missing_ok=True)

    def _append(self, metrics: list[Metric]) -> None:
        line = json.dumps([[m.key, m.value, m.timestamp, m.step] for m in metrics]) + "\n"
        try:
            if self._journal is None:
                if private_folder(self.path.parent, cache_root()) is None:
                    raise OSError(f"{self.path.parent} is not the user's own")
                self._journal = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(self._journal, line.encode())
            sync_data(self._journal)  # on disk, as the store's own commits are
        except OSError as exc:
            log.warning("cannot keep the epoch journal %s (%s): every epoch of run %s is "
                        "written to the store as it ends", self.path, exc, self.run_id)
            self._batching = False


def replay(client: MlflowClient, run_id: str, folder: str | Path | None = None) -> int:
    """The epochs of a run's journal (in `folder`, the run's tag.JOURNAL_DIR) written to the store,
    the journal removed: how many epochs it held. A line cut short by the kill is skipped (its
    epoch never ended)."""
    path = journal_path(run_id, folder)
    if not private_file(path):  # none, or a file another user could have written
        return 0
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return 0
    epochs = []
    for line in lines:
        try:
            epochs.append([Metric(key, float(value), int(timestamp), int(step))
                           for key, value, timestamp, step in json.loads(line)])
        except (ValueError, TypeError):
            log.warning("skipped a damaged line of %s", path)
    _write(client, run_id, [m for epoch in epochs for m in epoch])
    path.unlink(missing_ok=True)
    return len(epochs)
