"""A sweep's worker processes: those of joblib's pool stopped through the pool itself, and each
worker ended with the sweep's main process when that is killed outright."""

from __future__ import annotations

import os
import signal
import time

# a worker ends its run KILLED within a store write or two of SIGTERM; one that takes longer is
# stuck and is killed (its run is then marked KILLED by finish_sweep)
WORKER_GRACE_SECONDS = 5.0


def end_workers(kill: bool) -> None:
    """The joblib launcher's workers ended through the reusable pool that holds them, so none
    outlives the sweep: at its end they are shut down and waited for; on a stop (`kill`) they
    are killed, and their runs, left RUNNING, are marked KILLED with the epochs of their
    journals by finish_sweep."""
    from joblib.externals.loky import get_reusable_executor

    # reuse=True: the pool the launcher used, whatever its settings (none: an empty one)
    get_reusable_executor(reuse=True).shutdown(wait=True, kill_workers=kill)


WATCHER = "digitlab-end-with-driver"  # the thread's name: a worker runs many jobs, one watcher


def end_with_driver(driver: int) -> None:
    """In a joblib worker: a daemon thread that stops this process when the sweep's main process
    (`driver`) is gone (killed outright, it could not stop its workers): the run in flight ends
    KILLED, and the process is killed if the job does not end within the grace time."""
    import threading

    if os.getppid() != driver or any(t.name == WATCHER for t in threading.enumerate()):
        return  # not a worker of the sweep's own pool (the main process, a Ray worker)

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # stopping's handler: the run ends KILLED
        time.sleep(WORKER_GRACE_SECONDS * 4)
        os.kill(os.getpid(), signal.SIGKILL)  # a job stuck past its grace: its run is reaped

    threading.Thread(target=watch, name=WATCHER, daemon=True).start()
