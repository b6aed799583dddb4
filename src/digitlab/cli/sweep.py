"""A sweep: one value built by its main process before any job starts (the store, experiment
and parent run made ready), handed to every job with the task function (pickled to joblib and
Ray workers with it), and used at the end to read the jobs' outcomes back, end the parent run and
print the summary. Its workers: those of joblib's pool stopped through the pool itself, and each
ended with the sweep's main process when that is killed outright."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from digitlab import tags as tag
from digitlab.cli import project
from digitlab.cli.preflight import prepare_store
from digitlab.cli.project import git_state, project_root
from digitlab.config import RunConfig
from digitlab.files import write_atomic

# where a sweep's job leaves its outcome: <sweep folder>/<job number>/RESULT_FILE
RESULT_FILE = "digitlab_result.json"
# in the sweep folder: the store is gone, its server down or its file deleted (for the sweep whose
# token it holds)
STORE_LOST_FILE = "digitlab_store_lost"
# in the sweep folder: how many of its jobs are done, by status, for each job's "[k/N, …]" line
PROGRESS_FILE = "digitlab_progress.json"


@dataclass
class Sweep:
    """One sweep, as its main process made it and its jobs receive it."""

    dir: Path  # as the main process resolved it: a Ray worker resolves ${now:} differently
    swept: list[str]  # the keys with more than one value
    jobs: int  # how many distinct configs it runs
    # its mark on its jobs' outcomes: a folder may hold an earlier sweep's
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    driver_pid: int = field(default_factory=os.getpid)  # its main process
    in_joblib_workers: bool = False  # hydra/launcher=joblib: its pool is ended with the sweep
    uri: str | None = None  # None: tracking off
    experiment_id: str | None = None
    parent_run_id: str | None = None
    owns_parent: bool = True  # False when joining a parent run given in tracking.parent_run_id
    started: float = 0.0  # when the store was ready: each job's "[k/N, ≈ … left]" counts from it
    # successive halving (digitlab.halving): the epochs of its rungs, the one being launched, and
    # the jobs it plans to launch over all of them
    rungs: list[int] = field(default_factory=list)
    rung: int = 0
    launches: int = 0

    @property
    def until(self) -> int | None:
        """The epoch the runs of the rung being launched train to (None: no halving)."""
        return self.rungs[self.rung] if self.rungs else None

    @property
    def name(self) -> str:
        """What it varies and how many runs it makes: `hidden×lr×seed, 12 runs`."""
        keys = "×".join(k.lstrip("+~").split(".")[-1] for k in self.swept) or "sweep"
        return f"{keys}, {self.jobs} run{'s' if self.jobs != 1 else ''}"


def start_sweep(config: DictConfig, jobs: list[list[str]], swept: list[str],
                first: RunConfig) -> Sweep:
    """The sweep's folder, and with tracking on its store, experiment and parent run, made
    before any job starts; `first` is its first job's checked config."""
    sweep = Sweep(Path(config.hydra.sweep.dir).resolve(), swept, len(jobs), in_joblib_workers=str(
        config.hydra.launcher.get("_target_", "")).endswith(".JoblibLauncher"))
    sweep.dir.mkdir(parents=True, exist_ok=True)
    if first.tracking.enabled:
        from digitlab.tracking.runs import start_parent_run
        from digitlab.tracking.store import resolve_uri

        sweep.uri = resolve_uri(first.tracking.uri, project_root())
        print(f"{sweep.name} into {sweep.dir}, tracked in {sweep.uri}, experiment "
              f"{first.tracking.experiment}", flush=True)  # opening the store may take seconds
        sweep.experiment_id = prepare_store(sweep.uri, first.tracking.experiment)
        sweep.owns_parent = first.tracking.parent_run_id is None
        # as given: ${hydra:job.num} in an override is each job's, not resolved here
        task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        sweep.parent_run_id = first.tracking.parent_run_id or start_parent_run(
            sweep.uri, sweep.experiment_id, name=sweep.name,
            tags={tag.SWEEP_DIR: str(sweep.dir), tag.OVERRIDES: " ".join(task),
                  tag.JOBS: str(len(jobs)),
                  tag.COMMAND: sweep_command(task, OmegaConf.to_container(
                      config.hydra.overrides.hydra, resolve=False)),
                  **git_state()})
    else:
        print(f"{sweep.name} into {sweep.dir}, tracking off", flush=True)
    sweep.started = time.time()
    if sweep.in_joblib_workers:
        print(f"starting {config.hydra.launcher.get('n_jobs')} joblib workers (each imports the "
              "project and MLflow first: a few seconds)", flush=True)
    return sweep


def sweep_command(task: list[str], hydra_overrides: list[str]) -> str:
    """The command that runs the sweep again, the launcher's and Hydra's settings included."""
    import shlex

    given = [o for o in hydra_overrides if not o.startswith("hydra.mode=")]  # Hydra's own
    return shlex.join(["python", "pipelines/train.py", "-m", *task, *given])


def progress(sweep: Sweep, status: str) -> str:
    """`[k/N, …]`: k counts the jobs of this sweep done with this one (whose `status` is
    given), then how many of them failed or were skipped, and the time the rest will take at
    the pace of those (jobs run one after another or n_jobs at a time)."""
    counts, total = _count_done(sweep, status), sweep.launches or sweep.jobs
    done = sum(n for s, n in counts.items() if s != "sweep")
    left = total - done
    parts = [f"{done}/{total}"]
    failed = done - counts.get("FINISHED", 0) - counts.get("SKIPPED", 0)
    parts += [f"{n} {what}" for n, what in ((failed, "failed"),
                                            (counts.get("SKIPPED", 0), "skipped")) if n]
    if left > 0:
        seconds = (time.time() - sweep.started) / done * left
        parts.append(f"≈ {seconds // 60:.0f} min {seconds % 60:02.0f} s left")
    return f"[{', '.join(parts)}] "


def _count_done(sweep: Sweep, status: str) -> dict:
    """This job counted among the sweep's done jobs, by status: one small file read and written
    under a lock whatever the sweep's size, parallel jobs included ({"sweep": token, status: n})."""
    from filelock import FileLock, Timeout

    path, counts = sweep.dir / PROGRESS_FILE, {"sweep": sweep.token, status: 1}
    try:
        with FileLock(f"{path}.lock", timeout=60):
            try:
                found = json.loads(path.read_text())
            except (OSError, ValueError):
                found = {}
            if isinstance(found, dict) and found.get("sweep") == sweep.token:  # not an earlier one's
                counts = {**found, status: found.get(status, 0) + 1}
            write_atomic(path, json.dumps(counts))
    except (OSError, Timeout):  # a full disk or a stuck lock costs the count, never the job
        pass
    return counts


def job_folder(sweep: Sweep, job: int) -> Path:
    """Where job number `job` leaves its outcome."""
    return sweep.dir / str(job)


def outcome_of(sweep: Sweep, job: int) -> dict | None:
    """The outcome this sweep's job left (not one an earlier sweep left in the folder)."""
    try:
        outcome = json.loads((job_folder(sweep, job) / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return outcome if outcome.get("sweep") == sweep.token else None


def write_outcome(folder: Path, outcome: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / RESULT_FILE, json.dumps(outcome, default=str))


def sweep_outcomes(sweep: Sweep, every_rung: bool = False) -> list[dict]:
    """The outcomes this sweep's jobs left, in job order: each config's last (the rung it went
    furthest in, with successive halving), or `every_rung`'s."""
    found = (outcome_of(sweep, int(p.name)) for p in sweep.dir.iterdir() if p.name.isdigit())
    outcomes = sorted((o for o in found if o), key=lambda o: o["job"])
    if every_rung or not sweep.rungs:
        return outcomes
    last = {tuple(o["overrides"]): o for o in outcomes}
    return sorted(last.values(), key=lambda o: o["job"])


def mark_store_lost(sweep: Sweep, line: str) -> None:
    """Tell the sweep's later jobs that the store is gone (the line says how)."""
    write_atomic(sweep.dir / STORE_LOST_FILE, json.dumps({"sweep": sweep.token, "line": line}))


def store_lost(sweep: Sweep) -> str | None:
    """Why an earlier job of this sweep found the store gone, or None."""
    try:
        mark = json.loads((sweep.dir / STORE_LOST_FILE).read_text())
    except (OSError, ValueError):
        return None
    return mark.get("line") if isinstance(mark, dict) and mark.get("sweep") == sweep.token else None


def _end_parent_run(sweep: Sweep, status: str, skipped: list[dict]) -> None:
    """The parent run ended with the sweep's status, and the runs of workers that died marked
    KILLED; a store that fails here is one line (its runs are reaped at the next start)."""
    from digitlab.tracking.queries import describe_sweep
    from digitlab.tracking.runs import end_run
    from digitlab.tracking.store import client_for, describe, mark_dead_runs_killed

    lost = store_lost(sweep)
    if lost:  # a job found the store gone: every write would wait for it again
        print(f"digitlab: error: could not mark the sweep's parent run {sweep.parent_run_id} "
              f"{status}: {lost}", file=sys.stderr)
        return
    try:
        # workers killed outright (by joblib on a stop, by the OOM killer) leave RUNNING runs
        mark_dead_runs_killed(client_for(sweep.uri), sweep.experiment_id)
        # the comparison comes later, from compare.py: the description says where it goes
        about = (f"The comparison of this sweep's configs goes to compare/ in Artifacts when "
                 f"`{project.pipeline('compare.py')} sweep={sweep.parent_run_id}"
                 f"{project.store_arg(sweep.uri)}` runs (`make run` runs it after its sweep).")
        describe_sweep(sweep.uri, sweep.parent_run_id, sweep.experiment_id, about,
                       {o["run_id"]: o["name"] for o in skipped})
        end_run(sweep.uri, sweep.parent_run_id, status)
    except Exception as exc:
        fault = describe(exc, store=sweep.uri)
        later = "" if fault and fault.kind == "store_gone" else (
            "; the next command on this store marks it KILLED")
        print(f"digitlab: error: could not mark the sweep's parent run {sweep.parent_run_id} "
              f"{status}: {fault.line if fault else f'{type(exc).__name__}: {exc}'}{later}",
              file=sys.stderr)


def stopped_line(kept: int | None = None) -> str:
    """What a Ctrl-C or SIGTERM left: the runs kept, the one marked KILLED, how to go on."""
    if kept is None:
        return ("stopped: the run, if it had begun (none does before the store is ready), is "
                "marked KILLED in the store; the same command trains it again from the start")
    return (f"stopped: {kept} finished run(s) kept in the store, the run(s) in progress and the "
            "sweep's parent marked KILLED; the same command resumes it, skipping the finished "
            "runs")


def finish_sweep(sweep: Sweep | None, started: bool, interrupted: bool) -> int:
    """End the parent run, print the sweep's counts; the exit code (0 = every job finished).
    Without a sweep (a single run), a stop after it `started` says what it left."""
    if sweep is None:
        if interrupted and started:
            print(stopped_line(), file=sys.stderr)
        return 0
    from digitlab.tracking.store import ui_path

    # a second Ctrl-C meanwhile is told to wait by digitlab.stopping's handler
    if sweep.in_joblib_workers:
        end_workers(kill=interrupted)

    outcomes = sweep_outcomes(sweep)
    failed = [o for o in outcomes if o["status"] not in ("FINISHED", "SKIPPED")]
    skipped = [o for o in outcomes if o["status"] == "SKIPPED"]
    status = "KILLED" if interrupted else ("FAILED" if failed or not outcomes else "FINISHED")
    if sweep.parent_run_id and sweep.owns_parent:
        _end_parent_run(sweep, status, skipped)
    if outcomes:
        parent = f"  (parent run {sweep.parent_run_id})" if sweep.parent_run_id else ""
        print(f"\nsweep {sweep.dir}: {len(outcomes) - len(failed) - len(skipped)} finished, "
              f"{len(skipped)} skipped (already FINISHED), {len(failed)} failed{parent}")
        if sweep.rungs:
            print(_halving_line(sweep, outcomes))
        if sweep.parent_run_id and not interrupted:
            print(f"compare its configs: {project.pipeline('compare.py')} "
                  f"sweep={sweep.parent_run_id}{project.store_arg(sweep.uri)}")
            print(f"see its runs: {project.ui_page(sweep.uri, ui_path(sweep.experiment_id))}")
    if interrupted:
        kept = sum(o["status"] in ("FINISHED", "SKIPPED") for o in outcomes)
        print(stopped_line(kept), file=sys.stderr)
        failed = [o for o in failed if o["status"] != "KILLED"]  # said by that line
    for o in failed:
        print(f"{o['status']} job {o['job']} ({o['name']}): {o.get('error')}",
              file=sys.stderr)
    if not outcomes and not interrupted:  # no job left an outcome: nothing was done
        print(f"no job of the sweep in {sweep.dir} left an outcome", file=sys.stderr)
    return 1 if (failed or interrupted or not outcomes) else 0


def _halving_line(sweep: Sweep, outcomes: list[dict]) -> str:
    """What successive halving saved: the configs it stopped early, and the epochs trained
    against the full grid's."""
    trained = sum(o.get("epochs_trained", 0) for o in sweep_outcomes(sweep, every_rung=True))
    full = len(outcomes) * sweep.rungs[-1]
    stopped = sum(1 for o in outcomes if o.get("stopped_at"))
    return (f"successive halving: {stopped} of {len(outcomes)} runs stopped early (tagged "
            f"{tag.PRUNED}); {trained} epochs trained of the full grid's {full} "
            f"({trained / max(full, 1):.0%})")


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
