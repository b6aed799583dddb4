"""A sweep's worker processes: found through /proc, stopped with SIGTERM then SIGKILL, and
ended with the sweep's main process when it is killed outright."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def child_pids(but_trackers: bool = False) -> list[int]:
    """This process's children; `but_trackers`: without the resource trackers of multiprocessing
    and loky, which clean up after their parent whenever it exits."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").glob("*"):
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    if but_trackers:
        pids = [p for p in pids if "resource_tracker import main" not in _cmdline(p)]
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2:3]
    except OSError:
        return False


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


# a worker ends its run KILLED within a store write or two of SIGTERM; one that takes longer is
# stuck and gets SIGKILL (its run is then marked KILLED by finish_sweep)
WORKER_GRACE_SECONDS = 5.0


def stop_workers(grace: float = WORKER_GRACE_SECONDS) -> None:
    """SIGTERM this process's joblib workers so their runs end KILLED rather than RUNNING, wait
    for them a little, then SIGKILL those still there. The resource trackers, which ignore
    SIGTERM by design, are not waited for: they exit with their parent."""
    pids = child_pids(but_trackers=True)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = [p for p in pids if _alive(p)]
    _signal(pids, signal.SIGKILL)


def already_stopping(signum, frame) -> None:
    print("digitlab: stopping already: the runs are being marked KILLED (a few seconds)",
          file=sys.stderr)


DRIVER_PID_ENV = "DIGITLAB_DRIVER_PID"  # the sweep's main process, as its workers see it

_WATCHING_DRIVER = False


def end_with_driver() -> None:
    """In a joblib worker: a daemon thread that stops this process when the sweep's main process
    is gone (killed outright, it could not stop its workers): the run in flight ends KILLED, and
    the process exits even if the job does not."""
    import threading

    global _WATCHING_DRIVER
    driver = int(os.environ.get(DRIVER_PID_ENV) or 0)
    if not driver or driver == os.getpid() or os.getppid() != driver or _WATCHING_DRIVER:
        return
    _WATCHING_DRIVER = True

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # stopping's handler: the run ends KILLED
        time.sleep(WORKER_GRACE_SECONDS * 4)
        os._exit(143)

    threading.Thread(target=watch, name="digitlab-end-with-driver", daemon=True).start()


# what a job imports beyond Hydra: MLflow, scikit-learn, matplotlib (≈ 3 s a fresh worker)
JOB_MODULES = ("hydra_plugins.hydra_joblib_launcher._core", "digitlab.cli.job", "digitlab.runner",
               "digitlab.tracking.runs", "digitlab.evaluation", "digitlab.figures",
               "sklearn.model_selection", "threadpoolctl", "tqdm")

_warming = None  # the thread starting a joblib launcher's workers, while the sweep gets ready


def _import_job_modules() -> None:
    import importlib

    from digitlab import garbage

    with garbage.imports_held():
        for name in JOB_MODULES:
            importlib.import_module(name)


def joblib_arguments(launcher: dict) -> dict:
    """The arguments Hydra's joblib launcher gives Parallel for its config `launcher`
    (hydra_joblib_launcher._core.launch)."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    arguments = {k: v for k, v in launcher.items() if k != "_target_"}
    arguments["backend"] = "loky"  # as the launcher sets it
    process_joblib_cfg(arguments)
    return arguments


def warm_joblib_workers(launcher: dict) -> None:
    """Start the joblib launcher's worker processes now, each importing what a job imports,
    while this process makes the store and the parent run ready; the launcher's own Parallel,
    built from the same arguments, then reuses joblib's pool of warm workers. A warm-up that
    fails leaves the launcher to start its workers as it would have."""
    import threading

    from joblib import Parallel, delayed, effective_n_jobs

    global _warming
    arguments = joblib_arguments(launcher)
    workers = effective_n_jobs(arguments.get("n_jobs"))
    if workers < 2:
        return

    def warm() -> None:
        try:
            Parallel(**arguments)(delayed(_import_job_modules)() for _ in range(workers))
        except Exception:
            pass

    _warming = threading.Thread(target=warm, name="digitlab-warm-workers", daemon=True)
    _warming.start()


def wait_for_warm_workers() -> None:
    """Before the launcher's Parallel: the warm-up's Parallel is done with joblib's pool."""
    if _warming is not None:
        _warming.join()
