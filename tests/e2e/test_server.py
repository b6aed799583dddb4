"""A shared tracking server on a real database: Debian's PostgreSQL started on a spare loopback
port, `make server` on it, and a parallel sweep (joblib, 2 jobs) logging through the server;
every run, artifact and model is then read back through the server, and the rows are in
PostgreSQL."""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    ROOT,
    free_port,
    identical_sweeps_at_once,
    pipeline,
    pipeline_process,
    wait_healthy,
)

pytestmark = pytest.mark.timeout(600)
INITDB = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def as_postgres(*command: str) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture(scope="module")
def postgres():
    if not INITDB:
        if os.environ.get("DIGITLAB_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required here but not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    bin_dir = Path(INITDB[-1]).parent
    # outside pytest's private (0700) temp root: the postgres user must reach its folder
    folder = Path(tempfile.mkdtemp(prefix="digitlab-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = free_port()
    subprocess.run(as_postgres(str(bin_dir / "initdb"), "-D", str(folder / "data"),
                               "--auth=trust", "-U", "postgres"), check=True,
                   capture_output=True)
    subprocess.run(as_postgres(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-w",
                               "-l", str(folder / "log"), "-o",
                               f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"),
                   check=True, capture_output=True)
    try:
        subprocess.run(as_postgres(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                                   "-U", "postgres", "mlflow"), check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(as_postgres(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"),
                                   "-m", "immediate", "stop"), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """`make server` on the PostgreSQL database, artifacts in a folder of its own."""
    artifacts = tmp_path_factory.mktemp("server-artifacts")
    port = free_port()
    log = open(artifacts.parent / "server.log", "w")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(ROOT), "server", f"BACKEND={postgres}",
         f"ARTIFACTS={artifacts}", f"SERVER_PORT={port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # stop the whole group
    url = f"http://127.0.0.1:{port}"
    try:
        # the first start creates the tables
        wait_healthy(url, process, artifacts.parent / "server.log", timeout=180)
        yield url, postgres, artifacts
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def test_a_parallel_sweep_logs_every_run_and_artifact_through_the_server(server, tmp_path):
    import mlflow
    import psycopg
    from mlflow.tracking import MlflowClient

    url, database, artifacts = server
    done = pipeline("train.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    "model.hidden=8,16", "seed=0,1", "trainer.epochs=3", f"tracking.uri={url}",
                    "tracking.experiment=team", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 finished, 0 skipped (already FINISHED), 0 failed" in done.stdout

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("team")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # served, not local
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    assert all(r.info.status == "FINISHED" for r in runs)
    mlflow.set_tracking_uri(url)
    for child in children:
        logged = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.yaml", "weights", "report", "hydra"} <= logged
        weights = Path(client.download_artifacts(child.info.run_id, "weights/final.npz",
                                                 str(tmp_path)))
        with np.load(weights, allow_pickle=False) as state:
            assert state["W1"].shape == (64, int(child.data.params["model.hidden"]))
        model = mlflow.pyfunc.load_model(f"runs:/{child.info.run_id}/model")
        assert model.predict(np.zeros((3, 64), dtype=np.int64)).shape == (3,)
        assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) == 3
    # the artifacts live in the server's folder, the runs in PostgreSQL
    assert any(artifacts.rglob("final.npz"))
    with psycopg.connect(database) as connection:
        count = connection.execute(
            "SELECT count(*) FROM runs WHERE experiment_id = %s",
            (int(experiment.experiment_id),)).fetchone()[0]
    assert count == 5



def test_one_config_is_one_run_when_two_identical_sweeps_log_to_one_server(server, tmp_path):
    """No lock file reaches a server's other clients: each run claims its config in the store
    (created, then looking for another of its config), so of two identical joblib sweeps started
    together every config trains once and the other sweep takes that run."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    url, _, _ = server
    identical_sweeps_at_once(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             "seed=0,1,2", "trainer.epochs=30", "tracking.log_model=false",
                             f"tracking.uri={url}", "tracking.experiment=claims")
    client = MlflowClient(url)
    experiment_id = client.get_experiment_by_name("claims").experiment_id
    children = [r for r in client.search_runs([experiment_id])
                if "mlflow.parentRunId" in r.data.tags]
    identities = [r.data.tags["digitlab.config_hash"] for r in children]
    assert len(identities) == 3 and len(set(identities)) == 3, identities
    assert all(r.info.status == "FINISHED" for r in children)
    # a claim that gave way left its run KILLED and deleted, never RUNNING
    assert all(r.info.status == "KILLED" for r in client.search_runs(
        [experiment_id], run_view_type=ViewType.DELETED_ONLY))


def _make_server(database: str, artifacts: Path, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(ROOT), "server", f"BACKEND={database}",
         f"ARTIFACTS={artifacts}", f"SERVER_PORT={port}"],
        stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)


# slow (≈ 2 min): four sweeps, two workers each, on 2 cores, and a 20 s outage
@pytest.mark.slow
def test_four_sweeps_into_one_server_ride_out_a_20_s_restart(postgres, tmp_path):
    """A team's four joblib sweeps (different and overlapping configs) into one server on
    PostgreSQL, the server stopped for 20 s while they train and started again: MLflow's
    retries (62 s a request) carry every job through; every config is FINISHED exactly once,
    no run is left RUNNING, no traceback, each sweep's summary counts its own jobs."""
    import time

    from mlflow.tracking import MlflowClient

    port, artifacts, log = free_port(), tmp_path / "artifacts", tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    server = _make_server(postgres, artifacts, port, log)
    sweeps = {"a": ("model.hidden=8,16", "seed=0,1"), "b": ("model.hidden=16,24", "seed=0,1"),
              "c": ("model.hidden=8,24", "seed=1,2"), "d": ("model.hidden=16", "seed=0,1,2")}
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    try:
        wait_healthy(url, server, log, timeout=180)
        started = {name: subprocess.Popen(
            [sys.executable, str(ROOT / "pipelines" / "train.py"), "-m", *grid,
             "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.epochs=150",
             "tracking.log_model=false", f"tracking.uri={url}", "tracking.experiment=four"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name, grid in sweeps.items()}
        client = MlflowClient(url)
        deadline = time.monotonic() + 300
        while not any(r.data.metrics.get("train_loss") for r in client.search_runs(
                [e.experiment_id for e in client.search_experiments()
                 if e.name == "four"])) and time.monotonic() < deadline:
            time.sleep(1)  # until a job trains
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        down = time.time() * 1000
        time.sleep(20)
        up = time.time() * 1000
        server = _make_server(postgres, artifacts, port, log)
        said = {name: p.communicate(timeout=900)[0] for name, p in started.items()}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    for name, (hidden, seeds) in sweeps.items():
        output, jobs = said[name], len(hidden.split(",")) * len(seeds.split(","))
        assert started[name].returncode == 0, output[-3000:]
        assert "Traceback" not in output and "Retrying" not in output, output[-3000:]
        finished, skipped, failed = map(int, re.search(
            r"^sweep \S+: (\d+) finished, (\d+) skipped \(already FINISHED\), (\d+) failed",
            output, re.M).groups())
        assert (finished + skipped, failed) == (jobs, 0), output[-3000:]
    server = _make_server(postgres, artifacts, port, log)
    try:
        wait_healthy(url, server, log, timeout=180)
        client = MlflowClient(url)
        experiment_id = client.get_experiment_by_name("four").experiment_id
        runs = client.search_runs([experiment_id])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    identities = [r.data.tags["digitlab.config_hash"] for r in children]
    assert len(identities) == 9 and len(set(identities)) == 9, identities  # 3 sizes × 3 seeds
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    # the outage fell inside runs: they started before it and ended after it
    assert any(r.info.start_time < down and r.info.end_time > up for r in children)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A one-node Ray cluster on 127.0.0.1 (`ray start --head`), started from a folder of its
    own: jobs run with that folder as their working directory, not the sweep's."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[dev]'")
    folder = tmp_path_factory.mktemp("ray-head")
    port = free_port()
    # the documented recipe: the cluster requires a token; a token file of the test's own, so a
    # ~/.ray/auth_token left by an earlier Ray run changes nothing
    token = folder / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**os.environ, **RAY_ENV, **ray_token_env(token), "RAY_AUTH_MODE": "token"}
    ray = str(Path(sys.executable).parent / "ray")
    failures = []
    # Ray gives its raylet a fixed 30 s to register with the GCS; on a loaded 2-vCPU machine that
    # can run out (seen once in CI), so a failed start is cleaned up and tried once more
    for _ in range(2):
        started = subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1",
                                  f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                                  "--disable-usage-stats"], cwd=folder, env=env,
                                 capture_output=True, text=True, timeout=180)
        if started.returncode == 0:
            break
        failures.append(started.stderr[-1500:])
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
    assert started.returncode == 0, "\n---\n".join(failures)
    try:
        yield f"127.0.0.1:{port}", token
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def ray_token_env(token) -> dict[str, str]:
    return {"RAY_AUTH_TOKEN_PATH": str(token)}


# no usage reports; a head on 127.0.0.1 binds only loopback with the second variable set
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def test_a_ray_sweep_without_a_token_is_refused_in_one_line(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[dev]'")
    done = pipeline("train.py", "-m", "hydra/launcher=ray_cluster", "seed=0,1", cwd=tmp_path,
                    env={**RAY_ENV, "HOME": str(tmp_path), "RAY_ADDRESS": "127.0.0.1:9"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "digitlab: error: hydra/launcher=ray_cluster: Ray's token authentication is on "
        "(RAY_AUTH_MODE=token) and this machine has no token: copy the head's ~/.ray/auth_token "
        "here (made there by `ray get-auth-token --generate`), or set RAY_AUTH_TOKEN_PATH or "
        "RAY_AUTH_TOKEN; a cluster started without authentication takes RAY_AUTH_MODE=disabled."]
    assert not (tmp_path / "outputs").exists()


def test_an_eight_job_sweep_on_ray_logs_to_the_server(server, ray_cluster, tmp_path):
    from mlflow.tracking import MlflowClient

    url, _, _ = server
    address, token = ray_cluster
    ray_args = ("-m", "hydra/launcher=ray_cluster", "model.hidden=8,16", "seed=0,1,2,3",
                "trainer.epochs=3", f"tracking.uri={url}", "tracking.experiment=cluster")
    # the driver sends the token without being told to (no RAY_AUTH_MODE here); a process of its
    # own: a Ray driver stays attached to its process until that exits, and is ended with it
    # once the cluster stops
    done = pipeline_process("train.py", *ray_args, cwd=tmp_path,
                            env={**RAY_ENV, **ray_token_env(token), "RAY_ADDRESS": address})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 finished, 0 skipped (already FINISHED), 0 failed" in done.stdout
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("cluster")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 8 and all(r.info.status == "FINISHED" for r in runs)
    assert {(r.data.params["model.hidden"], r.data.params["seed"]) for r in children} == {
        (h, s) for h in ("8", "16") for s in "0123"}
    driver = parent.data.tags["digitlab.pid"]
    assert driver not in {r.data.tags["digitlab.pid"] for r in children}  # Ray's workers trained
    for child in children:
        logged = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.yaml", "weights", "report"} <= logged
    # every job reported back to the sweep folder the driver created
    sweeps = list((tmp_path / "outputs" / "sweeps").glob("*/*"))
    assert len(sweeps) == 1 and len(list(sweeps[0].glob("*/digitlab_result.json"))) == 8


def test_a_halving_sweep_on_ray_goes_on_in_the_same_runs_through_the_server(server, ray_cluster,
                                                                         tmp_path):
    from mlflow.tracking import MlflowClient

    url, _, _ = server
    address, token = ray_cluster
    done = pipeline_process("train.py", "-m", "hydra/launcher=ray_cluster", "model.hidden=8,16",
                            "seed=0,1", "trainer.epochs=2", "hydra.sweeper.prune=halving",
                            "hydra.sweeper.prune_eta=2", "tracking.log_model=false",
                            f"tracking.uri={url}", "tracking.experiment=cluster-halving",
                            cwd=tmp_path,
                            env={**RAY_ENV, **ray_token_env(token), "RAY_ADDRESS": address})
    assert done.returncode == 0, done.stderr[-3000:]
    # 4 runs × 1 epoch, then the better config's 2 runs × 1 more
    assert ("successive halving: 2 of 4 runs stopped early (tagged digitlab.pruned); 6 epochs "
            "trained of the full grid's 8 (75%)") in done.stdout
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("cluster-halving")
    children = [r for r in client.search_runs([experiment.experiment_id])
                if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    went_on = [r for r in children if r.data.metrics["epochs_run"] == 2.0]
    assert len(went_on) == 2 and len({r.data.params["model.hidden"] for r in went_on}) == 1
    assert all(r.data.tags["digitlab.pruned"] == "false" for r in went_on)
