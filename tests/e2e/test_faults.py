"""Faults of the machine and of the store, with real processes: a worker killed mid-sweep, a stop
while a store is being created, a full disk, a tracking server that dies, a sweep stopped with
Ctrl-C or killed outright. None may leave a run RUNNING that could be ended, a store half-made,
or the rest of a sweep unrun."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT, pipeline, runs_of, store

pytestmark = pytest.mark.timeout(600)


def children(uri, experiment=None):
    if not Path(uri.removeprefix("sqlite:///")).exists():  # opening it would create it
        return []
    return [r for r in runs_of(uri, experiment) if "mlflow.parentRunId" in r.data.tags]


def _wait(condition, timeout: float = 240, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # the store is being created or written
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def _start(args: list[str], cwd: Path, log: Path, script: str = "train.py",
           env: dict | None = None) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTEST_CURRENT_TEST", "MLFLOW_TRACKING_URI")}
    return subprocess.Popen([sys.executable, str(ROOT / "pipelines" / script), *args], cwd=cwd,
                            env={**environment, "PYTHONWARNINGS": "ignore", **(env or {})},
                            stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_a_killed_joblib_worker_costs_one_relaunch_not_the_sweep(tmp_path):
    uri = store(tmp_path)
    proc = _start(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3,4,5",
                   "trainer.epochs=400", "model.hidden=32", "trainer.engine=numpy",
                   "tracking.log_model=false", f"tracking.uri={uri}"], tmp_path,
                  tmp_path / "sweep.log")
    try:
        _wait(lambda: any(r.info.status == "RUNNING" and r.data.metrics.get("train_loss")
                          for r in children(uri)), what="a job training")
        victim = next(r for r in children(uri) if r.info.status == "RUNNING")
        os.kill(int(victim.data.tags["digitlab.pid"]), signal.SIGKILL)  # as the OOM killer does
        assert proc.wait(timeout=400) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    finally:
        proc.kill()
    output = (tmp_path / "sweep.log").read_text()
    assert "a worker process died" in output and "Traceback" not in output
    assert "6 finished, 0 skipped (already FINISHED), 0 failed" in output
    runs = children(uri)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert sorted(r.data.params["seed"] for r in finished) == [str(s) for s in range(6)]
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert victim.info.run_id in {r.info.run_id for r in killed}
    assert all("died while the run was RUNNING" in r.data.tags["error"] for r in killed)
    parent = next(r for r in runs_of(uri) if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED"
    # the lost launches' job folders are kept aside, and not counted as the jobs' outcomes
    assert list(tmp_path.glob("outputs/sweeps/*/*/*.worker-lost-1"))


def _pids_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _long_joblib_sweep(tmp_path: Path, uri: str) -> subprocess.Popen:
    proc = _start(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2",
                   "trainer.epochs=100000", "tracking.log_model=false", f"tracking.uri={uri}"],
                  tmp_path, tmp_path / "sweep.log")
    _wait(lambda: sum(r.info.status == "RUNNING" and bool(r.data.metrics.get("train_loss"))
                      for r in children(uri)) == 2, what="two jobs training")
    return proc


def test_ctrl_c_twice_on_a_joblib_sweep_ends_it_at_once_with_every_run_killed(tmp_path):
    uri = store(tmp_path)
    proc = _long_joblib_sweep(tmp_path, uri)
    try:
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # an impatient second Ctrl-C
        assert proc.wait(timeout=60) == 130
        assert time.monotonic() - started < 10
    finally:
        proc.kill()
    output = (tmp_path / "sweep.log").read_text()
    assert "Traceback" not in output, output[-3000:]
    assert sorted(r.info.status for r in runs_of(uri)) == ["KILLED"] * 3  # parent and 2 jobs


def test_a_sweep_killed_outright_takes_its_workers_with_it(tmp_path):
    uri = store(tmp_path)
    proc = _long_joblib_sweep(tmp_path, uri)
    workers = [int(r.data.tags["digitlab.pid"]) for r in children(uri)]
    helpers = [int(pid) for task in Path(f"/proc/{proc.pid}/task").glob("*")
               for pid in (task / "children").read_text().split()]  # workers, resource trackers
    assert set(workers) <= set(helpers) and len(helpers) > len(workers)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    _wait(lambda: not _pids_alive(helpers), timeout=30, what="the workers and trackers to exit")
    _wait(lambda: all(r.info.status == "KILLED" for r in children(uri)), timeout=30,
          what="the workers' runs to be KILLED")


@contextmanager
def _tmpfs(folder: Path, options: str):
    """A tmpfs mounted on `folder` (root only: CI and these machines run as root)."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    with _tmpfs(tmp_path / "small", "size=4m") as mount:  # a disk that fills up
        yield mount


def test_a_full_disk_while_artifacts_are_written_fails_the_run_in_one_line(tmp_path, small_disk):
    uri = f"sqlite:///{small_disk / 'mlruns' / 'mlflow.db'}"
    first = pipeline("train.py", "trainer.epochs=1", "tracking.log_model=false",
                     f"tracking.uri={uri}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 400_000))  # room for metrics, not weights
    done = pipeline("train.py", "trainer.epochs=2", "model.hidden=2000", "seed=1",
                    f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("digitlab: error:")]
    assert len(errors) == 1 and "no space left on the device" in errors[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (small_disk / "filler").unlink()
    runs = {r.info.run_id: r for r in runs_of(uri)}
    failed = [r for r in runs.values() if r.info.status == "FAILED"]
    assert len(runs) == 2 and len(failed) == 1
    assert "No space left on device" in failed[0].data.tags["error"]
    artifacts = Path(failed[0].info.artifact_uri.removeprefix("file://"))
    assert not artifacts.exists() or not any(artifacts.rglob("*.npz"))  # no partial artifacts


def _mlflow_server(backend: str, artifacts: Path, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server",
                             "--backend-store-uri", backend, "--artifacts-destination",
                             str(artifacts), "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1"], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                            start_new_session=True)


# slow (≈ 60 s): a real `mlflow server` started twice, and the bound it proves is the time the
# sweep's jobs take to give up on a server that is gone (MLflow's retries, tens of seconds)
@pytest.mark.slow
def test_a_tracking_server_that_dies_ends_the_sweep_in_bounded_time(tmp_path):
    from conftest import free_port, wait_healthy

    backend, port = f"sqlite:///{tmp_path / 'server.db'}", free_port()
    url = f"http://127.0.0.1:{port}"
    server = _mlflow_server(backend, tmp_path / "artifacts", port, tmp_path / "server.log")
    try:
        wait_healthy(url, server, tmp_path / "server.log", timeout=180)
        sweep = _start(["-m", "seed=0,1,2,3", "trainer.epochs=100000", "tracking.log_model=false",
                        f"tracking.uri={url}"], tmp_path, tmp_path / "sweep.log")
        _wait(lambda: any(r.data.metrics.get("train_loss") for r in children(backend)),
              what="the first job training")
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server dies and stays down
        server.wait(timeout=30)
    started = time.monotonic()
    try:
        code = sweep.wait(timeout=180)
    finally:
        sweep.kill()
    elapsed = time.monotonic() - started
    output = (tmp_path / "sweep.log").read_text()
    assert code == 1 and elapsed < 120, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "stopped answering" in output and "could not mark the sweep's parent run" in output
    assert output.count("not run: the tracking server") == 3  # the other jobs gave up at once
    server = _mlflow_server(backend, tmp_path / "artifacts", port, tmp_path / "server.log")
    try:  # back up: the next command marks what was left RUNNING as KILLED
        wait_healthy(url, server, tmp_path / "server.log", timeout=180)
        reaped = pipeline("status.py", f"tracking.uri={url}", "reap=true", cwd=tmp_path)
        assert reaped.returncode == 0, reaped.stderr[-2000:]
        assert not [r for r in runs_of(backend) if r.info.status == "RUNNING"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


CREATE_STORE = """
import sys
from digitlab import stopping, tracking
stopping.install()  # as the pipelines do: Ctrl-C raises even where SIGINT came in ignored
prepare_store(sys.argv[1], "digitlab")
print("whole", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_a_stop_while_the_store_is_created_leaves_no_store_or_a_whole_one(tmp_path, signum):
    """MLflow creates a store's tables, then runs its migrations for about a second: stopped in
    between, the file used to be half-migrated and unreadable for every later command."""
    outcomes = []
    for attempt, delay in enumerate((0.0, 0.4, 0.9, 1.5, 2.2)):
        uri = store(tmp_path / str(attempt))
        db = Path(uri.removeprefix("sqlite:///"))
        making = subprocess.Popen([sys.executable, "-c", CREATE_STORE, uri], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        _wait(lambda db=db, making=making: db.parent.exists() and any(
              db.parent.glob("*.creating")) or making.poll() is not None, timeout=60,
              what="the store's creation to start")
        time.sleep(delay)
        making.send_signal(signum)
        finished = "whole" in making.communicate(timeout=60)[0]
        outcomes.append("whole" if finished else "stopped")
        assert db.exists() == finished or db.exists()  # a stopped creation leaves no store...
        # ...or a whole one: the next run opens it (or makes it) and trains
        done = pipeline("train.py", "trainer.epochs=1", "tracking.log_model=false",
                        f"tracking.uri={uri}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert not list(db.parent.glob("*.creating"))
    assert "stopped" in outcomes  # at least one stop fell inside the creation


def test_a_store_locked_past_mlflows_busy_timeout_mid_run_fails_the_run_in_one_line(tmp_path):
    uri = store(tmp_path)
    db = Path(uri.removeprefix("sqlite:///"))
    proc = _start(["trainer.epochs=100000", "tracking.log_model=false", f"tracking.uri={uri}"],
                  tmp_path, tmp_path / "run.log")
    try:
        _wait(lambda: db.exists() and [r for r in runs_of(uri)
                                       if r.data.metrics.get("train_loss")], what="training")
        holder = sqlite3.connect(db, timeout=30)
        holder.execute("BEGIN EXCLUSIVE")  # another process writing for longer than 20 s
        time.sleep(24)
        holder.rollback()
        holder.close()
        assert proc.wait(timeout=120) == 1
    finally:
        proc.kill()
    output = (tmp_path / "run.log").read_text()
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("digitlab: error:")]
    assert len(errors) == 1 and "locked by another process for more than 20 s" in errors[0]
    run = runs_of(uri)[0]
    assert run.info.status == "FAILED" and "database is locked" in run.data.tags["error"]


def test_a_read_only_working_folder_is_one_line(tmp_path):
    with _tmpfs(tmp_path / "read-only", "ro,size=1m") as folder:
        for args in (["train.py", "trainer.epochs=1", "tracking=off"],
                     ["train.py", "-m", "seed=0,1", "trainer.epochs=1", "tracking=off"],
                     ["compare.py", f"tracking.uri={store(tmp_path)}"]):
            done = pipeline(*args, cwd=folder)
            assert done.returncode == 2, done.stderr[-2000:]
            assert "cannot write in" in done.stderr and "Read-only file system" in done.stderr
            assert len(done.stderr.strip().splitlines()) == 1


def test_a_server_killed_in_the_middle_of_an_answer_is_a_server_gone():
    from mlflow.exceptions import MlflowException

    from digitlab.tracking.store import describe

    # as MLflow reported a tracking server SIGKILLed while it answered a log-batch
    exc = MlflowException("API request to http://127.0.0.1:1/api/2.0/mlflow/runs/log-batch "
                          "failed with exception ('Connection broken: IncompleteRead(0 bytes "
                          "read, 2 more expected)', IncompleteRead(0 bytes read, 2 more expected))")
    assert describe(exc, store="http://127.0.0.1:1").kind == "server_gone"
