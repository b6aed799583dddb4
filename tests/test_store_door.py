"""The store at the door: a login in MLFLOW_TRACKING_URI never printed, the key a URI came from
named, and the user database of an authenticating server readable by its owner alone."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from conftest import ROOT
from digitlab import server
from digitlab.tracking.store import StoreError, check_store, resolve_uri


def test_a_login_in_the_environments_uri_is_handed_to_mlflow_and_never_printed(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://me:s3cret@127.0.0.1:9")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    uri = resolve_uri(None, ROOT)
    assert uri == "http://127.0.0.1:9"
    import os

    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "me"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s3cret"
    with pytest.raises(StoreError) as refused:
        check_store(uri)
    message = str(refused.value)
    assert "s3cret" not in message and "me:" not in message
    assert message.startswith("MLFLOW_TRACKING_URI=http://127.0.0.1:9: the tracking server")


def test_an_authenticating_servers_user_database_is_its_owners_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "first-start")
    db = tmp_path / "mlruns" / "basic_auth.db"
    args = server.parse_args(["--auth", "on", "--auth-db", f"sqlite:///{db}",
                              "--artifacts", str(tmp_path / "mlruns" / "artifacts")])
    server.server_command(args)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    db.chmod(0o644)  # made by an earlier version: narrowed at the next start
    server.server_command(args)
    assert stat.S_IMODE(Path(db).stat().st_mode) == 0o600
