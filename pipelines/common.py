"""Hydra glue shared by the pipelines: config validation, the sweep callback (store, experiment
and parent run before any job starts), one job, and the sweep summary."""

from __future__ import annotations

import atexit
import functools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from digitlab.composition import (CHECKED, RESULT_FILE, SWEEP_DIR_ENV, JobComposer,
                                  check_known_keys)
from digitlab.config import ConfigError, RunConfig, check_given_keys_act, register_configs

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SWEEP_FILE = "digitlab_sweep.json"
STORE_LOST_FILE = "digitlab_store_lost"  # in the sweep folder: the tracking server is gone
EXIT_BAD_INPUT = 2
log = logging.getLogger("digitlab")

register_configs()
# ${pid:} in conf/train.yaml: two sweeps started in the same microsecond still get two folders
OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)
# ${digitlab_pipelines:} in conf/hydra/launcher/ray_cluster.yaml: where workers import `common` from
OmegaConf.register_new_resolver("digitlab_pipelines", lambda: str(PROJECT_ROOT / "pipelines"),
                                replace=True)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """The typed config; raises ConfigError naming key, value and what is allowed, or a key
    the schema does not have."""
    check_known_keys(cfg)
    return OmegaConf.to_object(cfg)


@functools.cache  # once per process: the code a process runs is the code it imported
def git_state() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)
        except OSError:  # no git on this machine: the run is logged as commit "unknown"
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git.commit": commit or "unknown", "git.dirty": str(bool(dirty)).lower()}


def fail(message: str) -> None:
    """One line on stderr and exit code 2: bad input, nothing was run."""
    print(f"digitlab: error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def refuse_unknown_keys(cfg: DictConfig) -> None:
    """A pipeline's config with a key its schema lacks (`+typo=1`): one line and exit 2."""
    try:
        check_known_keys(cfg)
    except ConfigError as exc:
        fail(str(exc))


def check_writable(folder: str | Path, key: str) -> None:
    """One line and exit 2 unless `folder` can be created and written (a read-only working
    folder, a full or read-only mount), before anything is run."""
    import tempfile

    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".digitlab-write-check-"))
    except OSError as exc:
        fail(f"{key}={folder}: cannot write in {existing} ({exc.strerror}); run the command from "
             f"a writable folder or set {key}= to one.")


def exit_now(code: int | str | None) -> NoReturn:
    """sys.exit without the interpreter's teardown, which frees the module graph of MLflow,
    SQLAlchemy, pandas and matplotlib one object at a time: 1–2 s at the end of every command.
    By now the store's writes are committed and files closed; output and logs are flushed here."""
    _end_idle_joblib_workers()
    # workers still running (a stopped sweep), a Ray driver's connection: only the normal exit
    # ends them cleanly
    if _child_pids(but_trackers=True) or "ray" in sys.modules:
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _end_idle_joblib_workers() -> None:
    """End joblib's reusable workers now that the launcher has its results (the normal exit
    waits while each tears down its own imports), then run the exit handlers that unregister
    their semaphores and temporary folders, so the resource trackers find nothing left."""
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    if getattr(loky, "_executor", None) is not None:
        loky._executor.shutdown(wait=True)
        atexit._run_exitfuncs()


# keys renamed so that every pipeline names the store as train.py does: the old spelling is
# refused with the new one
RENAMED_KEYS = {"uri": "tracking.uri", "mlflow_experiment": "tracking.experiment"}
# recipes renamed so that "seed" means only the random seed
RENAMED_RECIPES = {"seed-blog": "blog-network", "seed-blog-fixed": "blog-network-fixed"}


def refuse_renamed_keys(argv: list[str]) -> None:
    for arg in argv:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        new = RENAMED_KEYS.get(key)
        if new:
            fail(f"{key}= is now {new}= in every pipeline: {new}={value}")
        for old in value.split(","):
            if key == "experiment" and old in RENAMED_RECIPES:
                fail(f"experiment={old} is now experiment={RENAMED_RECIPES[old]}")


def run_and_exit(main) -> NoReturn:
    """Runs a pipeline's Hydra main and exits with its code through `exit_now`."""
    try:
        refuse_renamed_keys(sys.argv[1:])
        main()
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


def expand_sweep(task_overrides: list[str]) -> tuple[list[list[str]], list[str]]:
    """The override list of every job, as Hydra's basic sweeper expands them, and the swept keys."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = OverridesParser.create().parse_overrides(task_overrides)
    swept = [o.get_key_element() for o in parsed if o.is_sweep_override()]
    return BasicSweeper.split_arguments(parsed, None)[0], swept


def _one_line(exc: BaseException) -> str:
    """Hydra's multi-line message and its cause (which names the key and type) as one line."""
    noise = ("full_key", "object_type", "reference_type", "See https", "Set the environment",
             "Config search path", "provider=")
    parts = []
    while exc is not None:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        parts += [line for line in lines if not line.startswith(noise) and line not in parts]
        exc = exc.__cause__
    return " ".join(parts)


def _quoting_hint(exc: BaseException) -> str:
    """Hydra's grammar reads a bare value of plain ASCII only: a space splits the override in
    two for the shell, a non-ASCII character stops the lexer."""
    text = str(exc)
    if "LexerNoViableAltException" in text or "missing EQUAL" in text or "no viable" in text:
        return (" — a value with spaces or non-ASCII characters must be quoted for Hydra, inside "
                "the shell's quotes: \"data.root='/path/with space/ü'\"")
    return ""


def preflight(argv: list[str], config_name: str) -> None:
    """Compose and check the config of every job the command line asks for, before Hydra starts
    anything: a typo, a wrong type, an unknown option or a bad value gets one line and exit 2."""
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    refuse_renamed_keys(argv)
    flags = [a for a in argv if a.startswith("-")]
    if any(f not in ("-m", "--multirun") for f in flags):
        return  # --help, --cfg, -cn …: Hydra's own business
    task = [a for a in argv if not a.startswith("-")
            and not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        jobs, swept = expand_sweep(task)
    except HydraException as exc:
        fail(_one_line(exc) + _quoting_hint(exc))
    if swept and not flags:
        fail(f"{' '.join(swept)}: a list of values needs -m to sweep over them "
             "(python pipelines/train.py -m …), or quote a single value.")
    for value in [a.split("=", 1)[1] for a in argv if a.startswith("hydra.launcher.n_jobs=")]:
        if not value.lstrip("-").isdigit() or int(value) == 0:
            fail(f"hydra.launcher.n_jobs={value}: expected the number of parallel jobs, an "
                 "integer ≥ 1 (or -1 for one per core, as joblib counts).")
    key = "hydra.sweep.dir" if flags else "hydra.run.dir"
    given = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith(f"{key}=")]
    # the folder Hydra creates first; conf/train.yaml's default lies under outputs/
    check_writable(given[0].split("${")[0] if given else "outputs", key)
    composer = JobComposer(PROJECT_ROOT / "conf", config_name)
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        for overrides in jobs:
            where = f" (in the sweep job {' '.join(overrides)})" if len(jobs) > 1 else ""
            try:
                checked = to_run_config(composer.compose(overrides))
                check_given_keys_act(checked, [o.split("=", 1)[0].lstrip("+~") for o in overrides])
                CHECKED[tuple(overrides)] = checked
            except ConfigError as exc:
                fail(f"{exc}{where}")
            except (HydraException, OmegaConfBaseException) as exc:
                fail(_one_line(exc) + where)


@dataclass
class Sweep:
    """The running sweep, as the main process knows it."""

    dir: Path
    uri: str | None = None
    parent_run_id: str | None = None
    owns_parent: bool = True  # False when joining a parent run given in tracking.parent_run_id


SWEEP: Sweep | None = None
STARTED = False  # a job (or a sweep) began: errors after this are not the command line's


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        global SWEEP, STARTED
        task = list(config.hydra.overrides.task)
        jobs, swept = expand_sweep(task)  # every job was checked by preflight()
        first = CHECKED.get(tuple(jobs[0])) or to_run_config(
            compose(config_name=config.hydra.job.config_name, overrides=jobs[0]))
        STARTED = True
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        os.environ[SWEEP_DIR_ENV] = str(sweep_dir.resolve())
        os.environ[DRIVER_PID_ENV] = str(os.getpid())
        SWEEP = Sweep(sweep_dir)
        record = {"swept": swept}
        if first.tracking.enabled:
            from digitlab import tracking

            SWEEP.uri = tracking.resolve_uri(first.tracking.uri, PROJECT_ROOT)
            experiment_id = prepare_store(SWEEP.uri, first.tracking.experiment)
            SWEEP.owns_parent = first.tracking.parent_run_id is None
            SWEEP.parent_run_id = first.tracking.parent_run_id or tracking.start_parent_run(
                SWEEP.uri, experiment_id, name=f"sweep {sweep_dir.name}",
                tags={"digitlab.sweep_dir": str(sweep_dir.resolve()),
                      "digitlab.overrides": " ".join(task), "digitlab.jobs": str(len(jobs)),
                      **git_state()})
            record.update(uri=SWEEP.uri, parent_run_id=SWEEP.parent_run_id,
                          experiment_id=experiment_id)
        (sweep_dir / SWEEP_FILE).write_text(json.dumps(record))
        log.info("sweep of %d jobs into %s", len(jobs), sweep_dir)


def prepare_store(uri: str, experiment: str) -> str:
    """The store checked and ready, or one line and exit code 2 before anything trains."""
    from digitlab import tracking

    try:
        return tracking.prepare_store(uri, experiment)
    except tracking.StoreError as exc:
        fail(str(exc))


def checked_store(configured_uri: str | None) -> str:
    """The tracking URI of an existing, readable store, or one line and exit code 2."""
    from digitlab import tracking

    uri = tracking.resolve_uri(configured_uri, PROJECT_ROOT)
    try:
        tracking.check_store(uri)
    except tracking.StoreError as exc:
        fail(str(exc))
    return uri


def _run_name(overrides: list[str], keys: list[str] | None = None) -> str:
    # model.hidden=64 optim.lr=0.1 seed=2 → "hidden=64 lr=0.1 seed=2"; in a sweep, swept keys only
    parts = [o.split("=", 1) for o in overrides
             if "=" in o and not o.lstrip("+~").startswith(("hydra", "tracking."))]
    if keys:
        parts = [(k, v) for k, v in parts if k.lstrip("+~") in keys]
    return " ".join(f"{k.split('.')[-1].lstrip('+~')}={v}" for k, v in parts) or "run"


def _sweep_record_at(sweep_dir: Path) -> dict:
    path = Path(sweep_dir) / SWEEP_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _sweep_dir(hc) -> Path:
    return Path(os.environ.get(SWEEP_DIR_ENV) or hc.sweep.dir)


def _sweep_record(hc) -> dict:
    return _sweep_record_at(_sweep_dir(hc))


def _thread_limit(hc) -> int | None:
    """One BLAS thread per parallel job so n_jobs workers don't oversubscribe the cores."""
    n_jobs = OmegaConf.select(hc, "launcher.n_jobs", default=None)
    if hc.mode != RunMode.MULTIRUN or n_jobs in (None, 1):
        return None
    jobs = os.cpu_count() if n_jobs == -1 else abs(int(n_jobs))
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def run_job(cfg: DictConfig) -> dict:
    """One job: validate, train, log; writes the job's outcome next to its Hydra files."""
    from threadpoolctl import threadpool_limits

    from digitlab import faults, runner, stopping
    from digitlab.data import DataError
    from digitlab.training import TrainingDiverged

    global STARTED
    STARTED = True
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    hydra_files = Path(hc.runtime.output_dir) / ".hydra"
    # a job's outcome goes where the driver reads it back: the driver's sweep folder
    out_dir = _sweep_dir(hc) / str(hc.sweep.subdir) if multirun else Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    try:
        run_cfg = to_run_config(cfg)
    except ConfigError as exc:
        fail(str(exc))
    stopping.install(signal.SIGTERM)  # also inside joblib workers
    if multirun:
        end_with_driver()
    record = _sweep_record(hc) if multirun else {}
    name = _run_name(overrides, record.get("swept"))
    tags = {"digitlab.overrides": " ".join(overrides), **git_state()}
    tracker: runner.Tracker = runner.NullTracker()
    uri = None
    if run_cfg.tracking.enabled:
        from digitlab import tracking

        uri = record.get("uri") or tracking.resolve_uri(run_cfg.tracking.uri, PROJECT_ROOT)
        experiment_id = record.get("experiment_id") or prepare_store(
            uri, run_cfg.tracking.experiment)
        parent = record.get("parent_run_id") or run_cfg.tracking.parent_run_id
        tracker = tracking.MlflowTracker(uri, experiment_id, parent)
        if multirun:
            tags.update({"digitlab.sweep_id": record.get("parent_run_id", ""),
                         "digitlab.job": str(hc.job.num)})
    outcome = {"job": hc.job.num if multirun else 0, "overrides": overrides, "name": name,
               "status": "FAILED"}
    code = 1
    lost_store = _sweep_dir(hc) / STORE_LOST_FILE
    if multirun and lost_store.exists():  # an earlier job found the tracking server gone
        outcome["error"] = f"not run: {lost_store.read_text()}"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / RESULT_FILE).write_text(json.dumps(outcome))
        return outcome
    try:
        with threadpool_limits(limits=_thread_limit(hc)), _progress(run_cfg) as on_epoch:
            result = runner.run(run_cfg, tracker, name, tags, out_dir,
                                {"hydra": hydra_files}, on_epoch)
        outcome.update(status="SKIPPED" if result.skipped else "FINISHED", run_id=result.run_id,
                       metrics=result.metrics)
        code = 0
        log.info("%s: %s%s", name, "already FINISHED as run %s, skipped (tracking.skip_finished"
                 "=false runs it again): " % result.run_id if result.skipped else "",
                 _summary(result.metrics))
    except (DataError, ConfigError) as exc:
        outcome["error"], code = str(exc), EXIT_BAD_INPUT
    except TrainingDiverged as exc:
        outcome["error"] = str(exc)
    except Exception as exc:  # recorded as FAILED; a sweep goes on with its other jobs
        fault = faults.describe(exc, store=uri)
        if fault is None:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("job failed")
        else:  # the machine's or the store's fault: one line, no traceback
            outcome["error"] = fault.line
            if fault.kind == "server_gone" and multirun:
                lost_store.write_text(fault.line)
    except BaseException:  # Ctrl-C / SIGTERM: the run is KILLED; stop everything
        outcome["status"] = "KILLED"
        (out_dir / RESULT_FILE).write_text(json.dumps(outcome))
        raise
    if multirun and outcome.get("error"):  # a single run says it once, on exit
        log.error("%s: %s", name, outcome["error"])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).write_text(json.dumps(outcome, default=str))
    if code and not multirun:
        print(f"digitlab: error: {outcome['error']}", file=sys.stderr)
        sys.exit(code)
    return outcome


def _summary(metrics: dict[str, float]) -> str:
    keys = ("best_val_accuracy", "test_accuracy", "best_epoch", "train_seconds")
    return "  ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)


class _progress:
    """A tqdm bar over epochs in a terminal, one log line per epoch otherwise."""

    def __init__(self, cfg: RunConfig):
        self.total = cfg.trainer.epochs

    def __enter__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="epoch", leave=False, disable=None)
        return self.update

    def update(self, record) -> None:
        if self.bar.disable:
            log.info("epoch %d/%d  %s", record.epoch, self.total, "  ".join(
                f"{k}={v:.4g}" for k, v in record.metrics().items()))
        else:
            self.bar.set_postfix(loss=f"{record.train_loss:.4f}",
                                 val=f"{record.val_accuracy or float('nan'):.4f}")
            self.bar.update()

    def __exit__(self, *exc) -> None:
        self.bar.close()


def sweep_outcomes(sweep_dir: Path) -> list[dict]:
    outcomes = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{RESULT_FILE}")
                if p.parent.name.isdigit()]  # not the folders of jobs whose worker died
    return sorted(outcomes, key=lambda o: o["job"])


def _child_pids(but_trackers: bool = False) -> list[int]:
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
    pids = _child_pids(but_trackers=True)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = [p for p in pids if _alive(p)]
    _signal(pids, signal.SIGKILL)


def _already_stopping(signum, frame) -> None:
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


def _end_parent_run(status: str, skipped: list[dict]) -> None:
    """The parent run ended with the sweep's status, and the runs of workers that died marked
    KILLED; a store that fails here is one line (its runs are reaped at the next start)."""
    from digitlab import faults, tracking

    try:
        # workers killed outright (by joblib on a stop, by the OOM killer) leave RUNNING runs
        tracking.mark_dead_runs_killed(tracking.MlflowClient(SWEEP.uri),
                                       _sweep_record_at(SWEEP.dir)["experiment_id"])
        if skipped:  # compare.py shows them with the sweep's own runs
            tracking.set_run_tag(SWEEP.uri, SWEEP.parent_run_id, "digitlab.reused",
                                 ",".join(o["run_id"] for o in skipped))
        tracking.end_run(SWEEP.uri, SWEEP.parent_run_id, status)
    except Exception as exc:
        fault = faults.describe(exc, store=SWEEP.uri)
        print(f"digitlab: error: could not mark the sweep's parent run {SWEEP.parent_run_id} "
              f"{status}: {fault.line if fault else f'{type(exc).__name__}: {exc}'}; the next "
              "command on this store marks it KILLED", file=sys.stderr)


def finish_sweep(interrupted: bool) -> int:
    """End the parent run, print the sweep's table; the exit code (0 = every job finished)."""
    if SWEEP is None:
        return 0
    if interrupted:  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGINT, _already_stopping)
        signal.signal(signal.SIGTERM, _already_stopping)
        stop_workers()
    import pandas as pd

    outcomes = sweep_outcomes(SWEEP.dir)
    failed = [o for o in outcomes if o["status"] not in ("FINISHED", "SKIPPED")]
    skipped = [o for o in outcomes if o["status"] == "SKIPPED"]
    status = "KILLED" if interrupted else ("FAILED" if failed or not outcomes else "FINISHED")
    if SWEEP.parent_run_id and SWEEP.owns_parent:
        _end_parent_run(status, skipped)
    if outcomes:
        rows = [{"job": o["job"], "run": o["name"], "status": o["status"],
                 "val_acc": o.get("metrics", {}).get("best_val_accuracy", math.nan),
                 "test_acc": o.get("metrics", {}).get("test_accuracy", math.nan),
                 "run_id": o.get("run_id") or ""} for o in outcomes]
        table = pd.DataFrame(rows).set_index("job")
        print(f"\nsweep {SWEEP.dir}: {len(outcomes) - len(failed) - len(skipped)} finished, "
              f"{len(skipped)} skipped (already FINISHED), {len(failed)} failed" + (f"  (parent run {SWEEP.parent_run_id})"
                                          if SWEEP.parent_run_id else ""))
        print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="—"))  # no val set: —
        done = table[table.status.isin(["FINISHED", "SKIPPED"])].dropna(subset=["val_acc"])
        if len(done):
            best = done.sort_values("val_acc", ascending=False).iloc[0]
            print(f"best: {best.run}  val_acc={best.val_acc:.4f}  test_acc={best.test_acc:.4f}")
    for o in failed:
        print(f"{o['status']} job {o['job']} ({o['name']}): {o.get('error')}",
              file=sys.stderr)
    return 1 if (failed or interrupted) else 0
