"""Runs left RUNNING by a process that died: found by their host and pid tags, marked KILLED."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from digitlab import tags as tag

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)




def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def mark_dead_runs_killed(client: MlflowClient, experiment_id: str | None = None) -> list[str]:
    """RUNNING runs started on this host by a process that no longer exists → KILLED, with the
    epochs their journal holds written first; in one experiment, or (None) in every one."""
    from digitlab.tracking.epochs import replay

    ids = [experiment_id] if experiment_id else [e.experiment_id
                                                 for e in client.search_experiments()]
    killed = []
    running = client.search_runs(ids, filter_string="attributes.status = 'RUNNING'",
                                 max_results=5000) if ids else []
    for run in running:
        if run_is_stale(run):
            replay(client, run.info.run_id, run.data.tags.get(tag.JOURNAL_DIR))
            client.set_tag(run.info.run_id, "error",
                           f"process {run.data.tags[tag.PID]} died while the run was RUNNING (killed by a "
                           "signal, e.g. the out-of-memory killer, or its machine stopped)")
            client.set_terminated(run.info.run_id, "KILLED")
            killed.append(run.info.run_id)
    if killed:
        log.warning("marked %d run(s) of dead processes KILLED: %s", len(killed), killed)
    return killed


def process_tags() -> dict[str, str]:
    return {tag.HOST: socket.gethostname(), tag.PID: str(os.getpid())}


def process_alive(host: str | None, pid: str | None) -> bool:
    """Whether the process that wrote these host/pid tags may still run (another host, or no
    pid: assume so)."""
    if host != socket.gethostname() or not (pid or "").isdigit():
        return True
    return pid_alive(int(pid))


def run_is_stale(run) -> bool:
    """A run whose process, on this host, is gone."""
    return not process_alive(run.data.tags.get(tag.HOST), run.data.tags.get(tag.PID))
