"""Reliability with real processes and real SQLite stores: nothing lost in parallel, killed
sweeps resume, failures stay contained, every bad input gets one clear line and exit code 2."""

from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    ROOT,
    client,
    dead_pid,
    identical_sweeps_at_once,
    idx_bytes,
    pipeline,
    pipeline_process,
    runs_of,
    store,
    write_idx_set,
    write_kaggle_csv,
)

PER_EPOCH = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "epoch_seconds")


def children(uri, experiment=None):
    return [r for r in runs_of(uri, experiment) if "mlflow.parentRunId" in r.data.tags]


# slow (13 s alone on 2 cores, 63 s beside another test file): 400 epochs' metrics from two
# joblib workers whose batched writes race each other; a few epochs would race for a moment
@pytest.mark.slow
def test_eight_jobs_times_fifty_epochs_lose_no_metric_point(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    "seed=0,1,2,3,4,5,6,7", "trainer.epochs=50", "model.hidden=8",
                    "tracking.log_model=false", f"tracking.uri={uri}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = children(uri)
    assert len(runs) == 8 and all(r.info.status == "FINISHED" for r in runs)
    c = client(uri)
    for key in PER_EPOCH:
        steps = [sorted(m.step for m in c.get_metric_history(r.info.run_id, key)) for r in runs]
        assert sum(map(len, steps)) == 8 * 50, key
        assert all(s == list(range(1, 51)) for s in steps), key  # no gap, no duplicate step


def test_a_divergent_job_fails_with_its_reason_and_the_sweep_goes_on(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "-m", "optim.lr=0.5,500", "model.activation=relu",
                    "model.output=identity", "model.loss=quadratic", "model.init=normal",
                    "trainer.epochs=5", "tracking.log_model=false", f"tracking.uri={uri}",
                    cwd=tmp_path)
    assert done.returncode == 1
    by_lr = {r.data.params["optim.lr"]: r for r in children(uri)}
    assert by_lr["0.5"].info.status == "FINISHED"
    assert by_lr["500.0"].info.status == "FAILED"
    assert "training diverged" in by_lr["500.0"].data.tags["error"]
    assert "at epoch 1" in by_lr["500.0"].data.tags["error"]


def _wait(predicate, timeout=180.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception:  # the store is being created
            pass
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_a_sigkilled_sweep_resumes_without_rerunning_finished_jobs(tmp_path):
    uri = store(tmp_path)
    # per-sample updates through NumPy calls (not the compiled loop): jobs of several seconds,
    # so the kill lands while one job is FINISHED and the next RUNNING
    args = [sys.executable, str(ROOT / "pipelines" / "train.py"), "-m", "seed=0,1,2,3",
            "trainer.epochs=60", "model.hidden=64", "trainer.batch_size=1",
            "trainer.engine=numpy", "tracking.log_model=false", f"tracking.uri={uri}"]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(lambda: sum(r.info.status == "FINISHED" for r in children(uri)) >= 1
              and any(r.info.status == "RUNNING" for r in children(uri)))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no handler runs: the hardest stop
        proc.wait()
    before = {r.info.run_id: r.info.status for r in children(uri)}
    finished_before = {i for i, s in before.items() if s == "FINISHED"}
    assert "RUNNING" in before.values()

    again = pipeline("train.py", *args[2:], cwd=tmp_path)  # the same command, once more
    assert again.returncode == 0, again.stderr[-3000:]
    runs = runs_of(uri)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    dead = [i for i, s in before.items() if s == "RUNNING"]
    assert all(client(uri).get_run(i).info.status == "KILLED" for i in dead)
    finished = [r for r in children(uri) if r.info.status == "FINISHED"]
    assert sorted(int(r.data.params["seed"]) for r in finished) == [0, 1, 2, 3]
    assert finished_before <= {r.info.run_id for r in finished}  # not trained again
    assert f"{len(finished_before)} skipped (already FINISHED)" in again.stdout


# slow (≈ 45 s alone on 2 cores, over a minute beside another test): 64 runs from two workers
# whose store writes race each other for the whole sweep; a few runs would race for seconds
@pytest.mark.slow
def test_sixty_four_run_sweep_with_two_workers_keeps_every_run(tmp_path):
    uri = store(tmp_path)
    done = pipeline("train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    "model.hidden=4,8,16,32", "optim.lr=0.1,0.5", "seed=0,1,2,3,4,5,6,7",
                    "trainer.epochs=2", "tracking.log_model=false", f"tracking.uri={uri}",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = children(uri)
    assert len(runs) == 64 and all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["digitlab.config_hash"] for r in runs}) == 64
    c = client(uri)
    for run in runs[::8]:
        assert len(c.get_metric_history(run.info.run_id, "val_accuracy")) == 2
        assert {a.path for a in c.list_artifacts(run.info.run_id)} >= {
            "config.yaml", "weights", "report", "hydra"}


def test_two_sweeps_started_together_do_not_collide(tmp_path):
    uri = store(tmp_path)
    args = [sys.executable, str(ROOT / "pipelines" / "train.py"), "-m", "trainer.epochs=2",
            "tracking.log_model=false", f"tracking.uri={uri}"]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    procs = [subprocess.Popen(args + [f"seed={a},{b}"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for a, b in ((0, 1), (2, 3))]
    for p in procs:
        _, err = p.communicate(timeout=600)  # drains both pipes while waiting
        assert p.returncode == 0, err[-2000:]
    parents = [r for r in runs_of(uri) if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and len({p.data.tags["digitlab.sweep_dir"] for p in parents}) == 2
    assert len(children(uri)) == 4


def test_one_config_is_one_run_when_two_identical_sweeps_start_together(tmp_path):
    """Nothing trains a config twice: the second sweep waits for the run the first one trains
    and finds it FINISHED (a lock per identity beside a SQLite store)."""
    uri = store(tmp_path)
    identical_sweeps_at_once(tmp_path, "seed=0,1,2", "trainer.epochs=30",
                             "tracking.log_model=false", f"tracking.uri={uri}")
    trained = [r for r in children(uri) if r.info.status == "FINISHED"]
    identities = [r.data.tags["digitlab.config_hash"] for r in trained]
    assert len(identities) == 3 and len(set(identities)) == 3, identities


# ---- bad input: one line, exit code 2, nothing left RUNNING, earlier runs untouched ------------

@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    root = write_idx_set(tmp / "mnist-ok")
    for name, edit in (("magic", lambda r: (r / "train-images-idx3-ubyte.gz").write_bytes(
                            gzip.compress(idx_bytes(np.zeros(5), 2049)))),
                       ("truncated", lambda r: (r / "t10k-images-idx3-ubyte.gz").write_bytes(
                           gzip.compress(idx_bytes(np.zeros((40, 28, 28)), 2051)[:-100]))),
                       ("count", lambda r: (r / "train-labels-idx1-ubyte.gz").write_bytes(
                           gzip.compress(idx_bytes(np.zeros(100), 2049)))),
                       ("label", lambda r: (r / "t10k-labels-idx1-ubyte.gz").write_bytes(
                           gzip.compress(idx_bytes(np.full(40, 12), 2049))))):
        edit(write_idx_set(tmp / f"mnist-{name}"))
    for name, line in (("cell", "3," + "x," + ",".join(["0"] * 783)),
                       ("pixel", "3," + ",".join(["300"] * 784)),
                       ("columns", "3," + ",".join(["0"] * 785)),
                       ("label", "12," + ",".join(["0"] * 784))):
        path = write_kaggle_csv(tmp / f"{name}.csv", n=50)
        path.write_text(path.read_text() + line + "\n")
    (tmp / "empty.csv").write_text("")
    write_kaggle_csv(tmp / "one.csv", n=1)
    same = write_kaggle_csv(tmp / "same.csv", n=30).read_text().splitlines()
    (tmp / "same.csv").write_text("\n".join([same[0]] + ["3" + r[r.index(","):] for r in same[1:]]))
    nan = write_kaggle_csv(tmp / "nan.csv", n=30).read_text().splitlines()
    nan[5] = nan[5].rsplit(",", 1)[0] + ",NaN"
    (tmp / "nan.csv").write_text("\n".join(nan) + "\n")
    (tmp / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (tmp / "corrupt.db").write_text("this is not a database")
    with sqlite3.connect(tmp / "foreign.db") as other:  # another application's database
        other.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    with sqlite3.connect(tmp / "half.db") as half:  # an MLflow migration cut off midway
        half.execute("CREATE TABLE experiments (experiment_id INTEGER)")
        half.execute("CREATE TABLE alembic_version (version_num TEXT)")
        half.execute("INSERT INTO alembic_version VALUES ('0a8213491aaa')")
        half.execute("CREATE TABLE _alembic_tmp_runs (run_uuid TEXT)")
    # a whole MLflow store, made in a process of its own (MLflow keeps a store once opened)
    subprocess.run([sys.executable, "-c", "import mlflow, sys; mlflow.MlflowClient(sys.argv[1])"
                    ".search_experiments()", f"sqlite:///{tmp / 'old.db'}"], check=True)
    with sqlite3.connect(tmp / "old.db") as old:  # of a schema this MLflow does not write
        old.execute("UPDATE alembic_version SET version_num = '0a8213491aaa'")
    subprocess.run([sys.executable, "-c", "import mlflow, sys; c = mlflow.MlflowClient(sys.argv[1]); "
                    "c.delete_experiment(c.create_experiment('digitlab-digits'))",
                    f"sqlite:///{tmp / 'deleted.db'}"], check=True)  # its experiment deleted
    return tmp, store(tmp), root


@pytest.fixture(scope="module")
def finished_run(bad_files):
    """The bad-input folder's store with one FINISHED run, which no bad input may touch."""
    tmp, uri, _ = bad_files
    done = pipeline("train.py", "trainer.epochs=1", "tracking.log_model=false",
                    f"tracking.uri={uri}", cwd=tmp)
    assert done.returncode == 0
    return uri


BAD_INPUTS = [  # (overrides, fragment of the one-line message); {t} = the fixture's folder
    ("optim.lrr=0.1", "optim.lrr=0.1: no such key, so it would change nothing (did you mean "
                      "optim.lr?)"),
    ("trainer.epochs=ten", "trainer.epochs=ten: expected a whole number"),
    ("optim=rmsprop", "optim=rmsprop: no such option (conf/optim/ has adam, sgd)"),
    ("optim.lr=-0.5", "optim.lr=-0.5 is not allowed: expected a learning rate > 0"),
    ("model.hidden=0", "model.hidden=0 is not allowed"),
    ("model.activation=swish", "model.activation='swish' is not allowed: expected one of"),
    ("trainer.batch_size=0", "trainer.batch_size=0 is not allowed"),
    ("data.val_size=1.5", "data.val_size=1.5 is not allowed"),
    ("model.output=softmax model.loss=binary_ce", "model.loss='binary_ce' is not allowed"),
    ("seed=-1", "seed=-1 is not allowed"),
    ("seed=0,1", "a list of values needs -m"),
    ("data=kaggle_csv", "data.path=None is not allowed"),
    ("data=mnist data.root={t}/nowhere", "the official IDX files are not in"),
    ("data=mnist data.root={t}/mnist-magic", "expected IDX images (magic 2051), found magic 2049"),
    ("data=mnist data.root={t}/mnist-truncated", "file is truncated"),
    ("data=mnist data.root={t}/mnist-count", "120 images but 100 labels"),
    ("data=mnist data.root={t}/mnist-label", "label 12 is outside 0–9"),
    ("data=kaggle_csv data.path={t}/cell.csv", "'x' is not a number"),
    ("data=kaggle_csv data.path={t}/pixel.csv", "pixel 300 is outside 0–255"),
    ("data=kaggle_csv data.path={t}/columns.csv", "has 786 cells, expected 785"),
    ("data=kaggle_csv data.path={t}/label.csv", "label 12 is outside 0–9"),
    ("data=kaggle_csv data.path={t}/empty.csv", "the file is empty"),
    ("tracking.uri=http://127.0.0.1:9", "the tracking server does not answer"),
    ("tracking.uri=sqlite:///{t}/corrupt.db", "not a usable SQLite database"),
    ("tracking.uri=sqlite:////proc/digitlab/mlflow.db", "cannot create the store's folder"),
    ("+optim.lrr=0.1", "optim.lrr: no such key, so it would change nothing (did you mean optim.lr"),
    ("+foo=1", "foo: no such key"),
    ("data.root={t}", "data.root changes nothing in this run: it acts only with data=mnist"),
    ("optim.beta1=0.8", "optim.beta1 changes nothing in this run: it acts only with optim=adam"),
    ("data.val_size=0.999", "a stratified split needs at least one row of each of the 10 classes"),
    ("data=kaggle_csv data.path={t}/one.csv", "a classifier needs rows of at least two classes"),
    ("data=kaggle_csv data.path={t}/same.csv", "every training row has label 3"),
    ("data=kaggle_csv data.path={t}/nan.csv", "'NaN' is a missing value (NaN)"),
    ("data=kaggle_csv data.path={t}/binary.csv", "binary data, not CSV text"),
    ("-m hydra/launcher=joblib hydra.launcher.n_jobs=0 seed=0,1", "hydra.launcher.n_jobs=0"),
    ("tracking.experiment=''", "tracking.experiment='' is not allowed"),
    ("data=mnist data.root={t}/ü", "must be quoted for Hydra"),
    ("data=mnist data.root={t}/with space", "must be quoted for Hydra"),
    ("data=mnist data.root=/a=b", "a value that holds '=' must be quoted for Hydra, inside the "
                                  "shell's quotes: \"data.root='/a=b'\""),
    ("model.hidden=[16=1]", "a value that holds '=' must be quoted for Hydra, inside the "
                            "shell's quotes: \"model.hidden=['16=1']\""),
    ("hydra.run.dir=/proc/digitlab-outputs", "hydra.run.dir=/proc/digitlab-outputs: cannot write"),
    ("tracking.uri=sqlite:///{t}/foreign.db", "an SQLite database of another application"),
    ("tracking.uri=sqlite:///{t}/half.db", "a half-made MLflow store (table _alembic_tmp_runs"),
    ("tracking.uri=sqlite:///{t}/old.db", "an MLflow store of another schema version (found "
                                          "version 0a8213491aaa"),
    ("tracking.uri=http://me:secret@127.0.0.1:9", "expected a URI without a login"),
    ("-m seed=0,1 tracking.uri=sqlite:///{t}/deleted.db", "the experiment is deleted"),
]


# one of each way a bad input is found, run as a user runs it: exit code, the one line, the store
END_TO_END = {"optim.lrr=0.1", "optim.lr=-0.5", "data=mnist data.root={t}/mnist-truncated",
              "tracking.uri=sqlite:///{t}/half.db", "data=mnist data.root={t}/with space",
              "-m hydra/launcher=joblib hydra.launcher.n_jobs=0 seed=0,1",
              "-m seed=0,1 tracking.uri=sqlite:///{t}/deleted.db"}


def _first_error(argv: list[str], capsys) -> str | None:
    """What train.py would say of this command line, found in-process in its order: the command
    line and each job's config (preflight), the data (the run's split), the store."""
    from digitlab import cli
    from digitlab.config import ConfigError
    from digitlab.data import DataError
    from digitlab.runner import load_split
    from digitlab.tracking.store import StoreError, prepare_store, resolve_uri

    capsys.readouterr()
    try:
        cfg = next(iter(cli.preflight(argv, "train").values()))  # a sweep's first job
    except SystemExit:
        return capsys.readouterr().err.strip()
    try:
        load_split(cfg)
        prepare_store(resolve_uri(cfg.tracking.uri, cli.project_root()),
                               cfg.tracking.experiment)
    except (ConfigError, DataError, StoreError) as exc:
        return f"digitlab: error: {exc}"
    return None


@pytest.mark.parametrize("overrides,fragment", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_found_with_its_one_line(bad_files, overrides, fragment, capsys):
    tmp, uri, _ = bad_files
    args = [a.format(t=tmp) for a in overrides.split()]
    if not any(a.startswith("tracking.uri") for a in args):
        args.append(f"tracking.uri={uri}")
    error = _first_error(["trainer.epochs=1", "tracking.log_model=false", *args], capsys)
    assert error is not None and len(error.splitlines()) == 1, error
    assert error.startswith("digitlab: error:") and fragment in error, error


@pytest.mark.parametrize("overrides,fragment", [b for b in BAD_INPUTS if b[0] in END_TO_END],
                         ids=[b[0] for b in BAD_INPUTS if b[0] in END_TO_END])
def test_bad_input_gets_one_line_and_exit_code_2(bad_files, finished_run, overrides, fragment):
    tmp, uri, _ = bad_files
    before = {r.info.run_id: (r.info.status, r.info.end_time) for r in runs_of(uri)}
    experiments = {e.name for e in client(uri).search_experiments()}
    args = [a.format(t=tmp) for a in overrides.split()]
    if not any(a.startswith("tracking.uri") for a in args):
        args.append(f"tracking.uri={uri}")
    flags = [a for a in args if a.startswith("-")]  # Hydra takes -m before the overrides
    done = pipeline_process("train.py", *flags, "trainer.epochs=1", "tracking.log_model=false",
                            *[a for a in args if a not in flags], cwd=tmp)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("digitlab: error:")]
    assert len(errors) == 1 and fragment in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    after = runs_of(uri)
    assert not [r for r in after if r.info.status == "RUNNING"]
    # the finished run is untouched, and bad input (a data error too) adds no run, nor an
    # experiment for the runs it did not make
    assert {r.info.run_id: (r.info.status, r.info.end_time) for r in after} == before
    assert {e.name for e in client(uri).search_experiments()} == experiments
    if overrides.startswith("data"):  # said once the data and every key are checked
        assert "recorded in" not in done.stdout


def test_a_locked_store_is_reported_before_training(bad_files, finished_run, monkeypatch):
    tmp, uri, _ = bad_files
    db = Path(uri.removeprefix("sqlite:///"))
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than the timeout
    try:
        done = pipeline("train.py", "trainer.epochs=1", f"tracking.uri={uri}", cwd=tmp,
                        env={"DIGITLAB_STORE_BUSY_SECONDS": "1"})
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 2
    assert "locked by another process for more than 1" in done.stderr


def test_a_bad_busy_timeout_in_the_environment_is_one_line(bad_files, finished_run):
    tmp, uri, _ = bad_files
    done = pipeline("train.py", "trainer.epochs=1", f"tracking.uri={uri}", cwd=tmp,
                    env={"DIGITLAB_STORE_BUSY_SECONDS": "abc"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("digitlab: error: DIGITLAB_STORE_BUSY_SECONDS='abc': expected "
                                   "a number of seconds ≥ 0 (default 20); fix or unset it.")


@pytest.mark.parametrize("script", ["status.py", "compare.py"])
def test_a_half_made_or_foreign_store_is_one_line_for_every_command(bad_files, script):
    tmp, _, _ = bad_files
    for db, fragment in (("half.db", "a half-made MLflow store"),
                         ("foreign.db", "an SQLite database of another application"),
                         ("old.db", "an MLflow store of another schema version")):
        done = pipeline(script, f"tracking.uri=sqlite:///{tmp / db}", cwd=tmp)
        assert done.returncode == 2, done.stderr[-2000:]
        assert fragment in done.stderr and len(done.stderr.strip().splitlines()) == 1
    with sqlite3.connect(tmp / "foreign.db") as other:  # nothing was added to it
        assert [r[0] for r in other.execute("SELECT name FROM sqlite_master")] == ["customers"]


def test_sigterm_ends_parallel_workers_runs_killed(tmp_path):
    uri = store(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "pipelines" / "train.py"), "-m",
                             "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1",
                             "trainer.epochs=100000", "tracking.log_model=false",
                             f"tracking.uri={uri}"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: sum(r.info.status == "RUNNING" for r in children(uri)) == 2
              and all(r.data.metrics.get("train_loss") for r in children(uri)))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        proc.kill()
    assert sorted(r.info.status for r in runs_of(uri)) == ["KILLED"] * 3


def test_status_shows_runs_by_status_and_reaps_stale_ones(tmp_path):
    import socket

    from digitlab import tags as tag
    from digitlab.tracking.store import prepare_store

    uri = store(tmp_path)
    experiment_id = prepare_store(uri, "digitlab")
    c = client(uri)
    c.set_terminated(c.create_run(experiment_id).info.run_id, "FINISHED")
    dead = dead_pid()
    stale = c.create_run(experiment_id, tags={tag.HOST: socket.gethostname(),
                                              tag.PID: dead})
    done = pipeline("status.py", f"tracking.uri={uri}", "reap=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 stale run(s)" in done.stdout and stale.info.run_id in done.stdout
    assert c.get_run(stale.info.run_id).info.status == "RUNNING"  # only shown
    done = pipeline("status.py", f"tracking.uri={uri}", cwd=tmp_path)
    assert "1 stale run(s)" in done.stdout and "marked KILLED" in done.stdout
    assert c.get_run(stale.info.run_id).info.status == "KILLED"
    assert "no stale runs" in pipeline("status.py", f"tracking.uri={uri}", cwd=tmp_path).stdout
