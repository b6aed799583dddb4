"""The team server authenticates whenever it listens beyond loopback (MLflow's basic-auth):
`make server` started with authentication refuses an anonymous request and takes a sweep
logged with the MLflow login variables, which appear in no logged param or tag."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, free_port, pipeline, wait_healthy
from digitlab import server

pytestmark = pytest.mark.timeout(600)
PASSWORD = "a-long-test-password-7"


def _command(*argv: str, env: dict | None = None):
    os.environ.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)
    os.environ.update(env or {})
    try:
        return server.server_command(server.parse_args(list(argv)))
    finally:
        os.environ.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)


def test_beyond_loopback_the_server_authenticates_or_refuses_to_start(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'auth.db'}"
    with pytest.raises(SystemExit, match="set MLFLOW_AUTH_ADMIN_PASSWORD"):
        _command("--host", "0.0.0.0", "--auth-db", db, "--artifacts", str(tmp_path / "a"))
    command, env = _command("--host", "0.0.0.0", "--auth-db", db, "--artifacts",
                            str(tmp_path / "a"), env={"MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD})
    assert command[-2:] == ["--app-name", "basic-auth"] and "MLFLOW_AUTH_CONFIG_PATH" in env
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    for host in ("127.0.0.1", "localhost", "::1"):
        assert "--app-name" not in _command("--host", host, "--auth-db", db)[0]
    command, _ = _command("--host", "0.0.0.0", "--auth", "off", "--auth-db", db)
    assert "--app-name" not in command
    assert "WITHOUT authentication" in capsys.readouterr().err


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_authenticated_server_refuses_strangers_and_logs_a_sweep_with_a_login(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(ROOT), "server", "AUTH=on",
         f"BACKEND=sqlite:///{tmp_path / 'mlflow.db'}", f"ARTIFACTS={tmp_path / 'artifacts'}",
         f"AUTH_DB=sqlite:///{tmp_path / 'auth.db'}", f"SERVER_PORT={port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD})
    try:
        wait_healthy(url, process, tmp_path / "server.log", timeout=180)
        assert _status(f"{url}/api/2.0/mlflow/experiments/search?max_results=5") == 401

        anonymous = pipeline("train.py", "trainer.epochs=1", f"tracking.uri={url}", cwd=tmp_path)
        assert anonymous.returncode == 2 and "requires a login" in anonymous.stderr

        login = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": PASSWORD}
        done = pipeline("train.py", "-m", "seed=0,1", "trainer.epochs=2", f"tracking.uri={url}",
                        cwd=tmp_path, env=login)
        assert done.returncode == 0, done.stderr[-3000:]

        os.environ.update(login)
        try:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(url)
            experiment = client.get_experiment_by_name("digitlab-digits")
            runs = client.search_runs([experiment.experiment_id])
        finally:
            for key in login:
                os.environ.pop(key)
        assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3
        for run in runs:  # the login is never a param or a tag
            values = [*run.data.params.values(), *run.data.tags.values()]
            assert not [v for v in values if PASSWORD in v]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
