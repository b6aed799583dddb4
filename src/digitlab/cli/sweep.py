"""A sweep as its main process sees it: the store, experiment and parent run made before any
job starts (Hydra's callback), the jobs' outcomes read back, the parent ended and the summary."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from hydra import compose
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from digitlab.cli import hints
from digitlab.cli.composition import (
    CHECKED,
    RESULT_FILE,
    SWEEP_DIR_ENV,
    distinct_jobs,
    expand_sweep,
)
from digitlab.cli.preflight import prepare_store, to_run_config
from digitlab.cli.processes import DRIVER_PID_ENV, end_workers
from digitlab.cli.project import PROJECT_ROOT, git_state

SWEEP_FILE = "digitlab_sweep.json"

# in the sweep folder: the store is gone, its server down or its file deleted (for the sweep whose
# token it holds)
STORE_LOST_FILE = "digitlab_store_lost"
# in the sweep folder: how many of its jobs are done, by status, for each job's "[k/N, …]" line
PROGRESS_FILE = "digitlab_progress.json"


@dataclass
class Sweep:
    """The running sweep, as the main process knows it."""

    dir: Path
    token: str  # this sweep's mark on its jobs' outcomes: a folder may hold an earlier sweep's
    uri: str | None = None
    parent_run_id: str | None = None
    owns_parent: bool = True  # False when joining a parent run given in tracking.parent_run_id
    in_joblib_workers: bool = False  # hydra/launcher=joblib: its pool is ended with the sweep


SWEEP: Sweep | None = None

STARTED = False  # a job (or a sweep) began: errors after this are not the command line's


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        global SWEEP, STARTED
        # as given: ${hydra:job.num} in an override is each job's, not resolved here
        task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        jobs, swept = expand_sweep(task)  # every job was checked by preflight()
        jobs = distinct_jobs(jobs)
        first = CHECKED.get(tuple(jobs[0])) or to_run_config(
            compose(config_name=config.hydra.job.config_name, overrides=jobs[0]))
        STARTED = True
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        os.environ[SWEEP_DIR_ENV] = str(sweep_dir.resolve())
        os.environ[DRIVER_PID_ENV] = str(os.getpid())  # before any worker starts
        launcher = str(config.hydra.launcher.get("_target_", ""))
        SWEEP = Sweep(sweep_dir, uuid.uuid4().hex,
                      in_joblib_workers=launcher.endswith(".JoblibLauncher"))
        record = {"swept": swept, "token": SWEEP.token, "jobs": len(jobs)}
        if first.tracking.enabled:
            from digitlab import tracking

            SWEEP.uri = tracking.resolve_uri(first.tracking.uri, PROJECT_ROOT)
            print(f"{sweep_name(swept, len(jobs))} into {sweep_dir}, tracked in {SWEEP.uri}, "
                  f"experiment {first.tracking.experiment}",
                  flush=True)  # before the store is opened: that may take seconds
            experiment_id = prepare_store(SWEEP.uri, first.tracking.experiment)
            SWEEP.owns_parent = first.tracking.parent_run_id is None
            SWEEP.parent_run_id = first.tracking.parent_run_id or tracking.start_parent_run(
                SWEEP.uri, experiment_id, name=sweep_name(swept, len(jobs)),
                tags={"digitlab.sweep_dir": str(sweep_dir.resolve()),
                      "digitlab.overrides": " ".join(task), "digitlab.jobs": str(len(jobs)),
                      "digitlab.command": sweep_command(
                          task, OmegaConf.to_container(config.hydra.overrides.hydra,
                                                       resolve=False)),
                      **git_state()})
            record.update(uri=SWEEP.uri, parent_run_id=SWEEP.parent_run_id,
                          experiment_id=experiment_id)
        else:
            print(f"{sweep_name(swept, len(jobs))} into {sweep_dir}, tracking off", flush=True)
        record["started"] = time.time()  # for each job's "[k/N, ≈ … left]": the store is ready
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(record))
        if SWEEP.in_joblib_workers:
            workers = config.hydra.launcher.get("n_jobs")
            print(f"starting {workers} joblib workers (each imports the project and MLflow "
                  "first: a few seconds)", flush=True)


def sweep_name(swept: list[str], jobs: int) -> str:
    """What a sweep varies and how many runs it makes: `hidden×lr×seed, 12 runs`."""
    keys = "×".join(k.lstrip("+~").split(".")[-1] for k in swept) or "sweep"
    return f"{keys}, {jobs} run{'s' if jobs != 1 else ''}"


def sweep_command(task: list[str], hydra_overrides: list[str]) -> str:
    """The command that runs the sweep again, the launcher's and Hydra's settings included."""
    import shlex

    given = [o for o in hydra_overrides if not o.startswith("hydra.mode=")]  # Hydra's own
    return shlex.join(["python", "pipelines/train.py", "-m", *task, *given])


def _sweep_record_at(sweep_dir: Path) -> dict:
    path = Path(sweep_dir) / SWEEP_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def sweep_dir_of(hc) -> Path:
    return Path(os.environ.get(SWEEP_DIR_ENV) or hc.sweep.dir)


def sweep_record(hc) -> dict:
    return _sweep_record_at(sweep_dir_of(hc))


def progress(record: dict, sweep_dir: Path, status: str) -> str:
    """`[k/N, …]`: k counts the jobs of this sweep done with this one (whose `status` is
    given), then how many of them failed or were skipped, and the time the rest will take at
    the pace of those (jobs run one after another or n_jobs at a time)."""
    total, token = record.get("jobs"), record.get("token")
    if not total or not token:
        return ""
    counts = _count_done(sweep_dir, token, status)
    done = sum(n for s, n in counts.items() if s != "sweep")
    left = total - done
    parts = [f"{done}/{total}"]
    failed = done - counts.get("FINISHED", 0) - counts.get("SKIPPED", 0)
    parts += [f"{n} {what}" for n, what in ((failed, "failed"),
                                            (counts.get("SKIPPED", 0), "skipped")) if n]
    if left > 0 and "started" in record:
        seconds = (time.time() - record["started"]) / done * left
        parts.append(f"≈ {seconds // 60:.0f} min {seconds % 60:02.0f} s left")
    return f"[{', '.join(parts)}] "


def _count_done(sweep_dir: Path, token: str, status: str) -> dict:
    """This job counted among the sweep's done jobs, by status: one small file read and written
    under a lock whatever the sweep's size, parallel jobs included ({"sweep": token, status: n})."""
    from filelock import FileLock, Timeout

    path, counts = sweep_dir / PROGRESS_FILE, {"sweep": token, status: 1}
    try:
        with FileLock(f"{path}.lock", timeout=60):
            try:
                found = json.loads(path.read_text())
            except (OSError, ValueError):
                found = {}
            if isinstance(found, dict) and found.get("sweep") == token:  # not an earlier sweep's
                counts = {**found, status: found.get(status, 0) + 1}
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(counts))
            os.replace(partial, path)
    except (OSError, Timeout):  # a full disk or a stuck lock costs the count, never the job
        pass
    return counts


def sweep_outcomes(sweep_dir: Path, token: str) -> list[dict]:
    """The outcomes this sweep's jobs left; a folder an earlier sweep used keeps that sweep's."""
    outcomes = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{RESULT_FILE}")
                if p.parent.name.isdigit()]
    return sorted((o for o in outcomes if o.get("sweep") == token), key=lambda o: o["job"])


def mark_store_lost(sweep_dir: Path, token: str, line: str) -> None:
    """Tell the sweep's later jobs that the store is gone (the line says how)."""
    (sweep_dir / STORE_LOST_FILE).write_text(json.dumps({"sweep": token, "line": line}))


def store_lost(sweep_dir: Path, token: str) -> str | None:
    """Why an earlier job of this sweep found the store gone, or None."""
    try:
        mark = json.loads((sweep_dir / STORE_LOST_FILE).read_text())
    except (OSError, ValueError):
        return None
    return mark.get("line") if isinstance(mark, dict) and mark.get("sweep") == token else None


def _end_parent_run(status: str, skipped: list[dict]) -> None:
    """The parent run ended with the sweep's status, and the runs of workers that died marked
    KILLED; a store that fails here is one line (its runs are reaped at the next start)."""
    from digitlab import faults, tracking

    try:
        # workers killed outright (by joblib on a stop, by the OOM killer) leave RUNNING runs
        tracking.mark_dead_runs_killed(tracking.client_for(SWEEP.uri),
                                       _sweep_record_at(SWEEP.dir)["experiment_id"])
        if skipped:  # compare.py shows them with the sweep's own runs
            tracking.set_reused_runs(SWEEP.uri, SWEEP.parent_run_id,
                                     [o["run_id"] for o in skipped])
        tracking.end_run(SWEEP.uri, SWEEP.parent_run_id, status)
    except Exception as exc:
        fault = faults.describe(exc, store=SWEEP.uri)
        later = "" if fault and fault.kind == "store_gone" else (
            "; the next command on this store marks it KILLED")
        print(f"digitlab: error: could not mark the sweep's parent run {SWEEP.parent_run_id} "
              f"{status}: {fault.line if fault else f'{type(exc).__name__}: {exc}'}{later}",
              file=sys.stderr)


def stopped_line(kept: int | None = None) -> str:
    """What a Ctrl-C or SIGTERM left: the runs kept, the one marked KILLED, how to go on."""
    if kept is None:
        return ("stopped: the run was marked KILLED in the store; the same command trains it "
                "again from the start")
    return (f"stopped: {kept} finished run(s) kept in the store, the run(s) in progress and the "
            "sweep's parent marked KILLED; the same command resumes it, skipping the finished "
            "runs")


def finish_sweep(interrupted: bool) -> int:
    """End the parent run, print the sweep's counts; the exit code (0 = every job finished)."""
    if SWEEP is None:
        if interrupted and STARTED:
            print(stopped_line(), file=sys.stderr)
        return 0
    # a second Ctrl-C meanwhile is told to wait by digitlab.stopping's handler
    if SWEEP.in_joblib_workers:
        end_workers(kill=interrupted)

    outcomes = sweep_outcomes(SWEEP.dir, SWEEP.token)
    failed = [o for o in outcomes if o["status"] not in ("FINISHED", "SKIPPED")]
    skipped = [o for o in outcomes if o["status"] == "SKIPPED"]
    status = "KILLED" if interrupted else ("FAILED" if failed or not outcomes else "FINISHED")
    if SWEEP.parent_run_id and SWEEP.owns_parent:
        _end_parent_run(status, skipped)
    if outcomes:
        parent = f"  (parent run {SWEEP.parent_run_id})" if SWEEP.parent_run_id else ""
        print(f"\nsweep {SWEEP.dir}: {len(outcomes) - len(failed) - len(skipped)} finished, "
              f"{len(skipped)} skipped (already FINISHED), {len(failed)} failed{parent}")
        if SWEEP.parent_run_id and not interrupted:
            from digitlab.tracking import default_uri

            where = "" if SWEEP.uri == default_uri(PROJECT_ROOT) else f" tracking.uri={SWEEP.uri}"
            print(f"compare its configs: {hints.pipeline('compare.py')} "
                  f"sweep={SWEEP.parent_run_id}{where}")
            experiment_id = _sweep_record_at(SWEEP.dir).get("experiment_id")
            if experiment_id:
                print(f"see its runs: {hints.ui_page(SWEEP.uri, hints.runs_page(experiment_id))}")
    if interrupted:
        kept = sum(o["status"] in ("FINISHED", "SKIPPED") for o in outcomes)
        print(stopped_line(kept), file=sys.stderr)
        failed = [o for o in failed if o["status"] != "KILLED"]  # said by that line
    for o in failed:
        print(f"{o['status']} job {o['job']} ({o['name']}): {o.get('error')}",
              file=sys.stderr)
    return 1 if (failed or interrupted) else 0
