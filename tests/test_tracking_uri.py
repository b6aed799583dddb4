"""The store a user names in MLFLOW_TRACKING_URI is the one every call uses, and the variable is
the same after every MLflow call: digitlab never sets MLflow's process-wide tracking URI."""

from __future__ import annotations

import os

import numpy as np

from conftest import ROOT, client, store
from digitlab import runner
from digitlab.config import RunConfig, TrainerConfig
from digitlab.tracking.model import alias_target, load_pyfunc, register_run_model
from digitlab.tracking.queries import runs_frame
from digitlab.tracking.runs import MlflowTracker
from digitlab.tracking.store import prepare_store, resolve_uri


def test_the_users_tracking_uri_is_honoured_after_every_mlflow_call(tmp_path, monkeypatch):
    uri = store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert resolve_uri(None, ROOT) == uri

    def still_there(after: str) -> None:
        assert os.environ.get("MLFLOW_TRACKING_URI") == uri, f"changed by {after}"
        assert resolve_uri(None, ROOT) == uri, f"resolved elsewhere after {after}"

    experiment_id = prepare_store(resolve_uri(None, ROOT), "digitlab")
    still_there("prepare_store")
    result = runner.run(RunConfig(trainer=TrainerConfig(epochs=2)),
                        MlflowTracker(uri, experiment_id), "a run",
                        out_dir=tmp_path / "out")
    still_there("a tracked run with its model")
    table = runs_frame(uri, [experiment_id])
    assert list(table["run_id"]) == [result.run_id]
    assert table.loc[0, "status"] == "FINISHED" and table.loc[0, "params.seed"] == "0"
    still_there("runs_frame")
    version, created = register_run_model(uri, result.run_id, "digits", "champion", {})
    assert created and alias_target(uri, "digits", "champion") == result.run_id
    still_there("register_run_model")
    model, width = load_pyfunc(uri, "models:/digits@champion")
    assert width == 64
    labels = model.predict(np.zeros((2, 64), dtype=np.int64))
    assert labels.shape == (2,)
    still_there("load_pyfunc")
    assert client(uri).get_run(result.run_id).outputs.model_outputs  # the LoggedModel is the run's


def test_models_load_from_the_store_named_whatever_the_process_wide_uri_says(tmp_path,
                                                                            monkeypatch):
    """MLFLOW_TRACKING_URI names another store and the working folder holds none: registering
    and loading a model by runs:/, models:/name@alias and models:/name/1 still read the store
    they are given, and create no store anywhere else."""
    monkeypatch.chdir(tmp_path)
    decoy = f"sqlite:///{tmp_path / 'decoy' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", decoy)
    uri = store(tmp_path / "real")
    experiment_id = prepare_store(uri, "digitlab")
    result = runner.run(RunConfig(trainer=TrainerConfig(epochs=2)),
                        MlflowTracker(uri, experiment_id), "a run",
                        out_dir=tmp_path / "out")
    register_run_model(uri, result.run_id, "digits", "champion", {})
    pixels = np.zeros((3, 64), dtype=np.int64)
    for model_uri in (f"runs:/{result.run_id}/model", "models:/digits@champion",
                      "models:/digits/1"):
        model, width = load_pyfunc(uri, model_uri)
        assert width == 64 and model.predict(pixels).shape == (3,), model_uri
    assert not (tmp_path / "decoy").exists() and not (tmp_path / "mlflow.db").exists()
    assert os.environ["MLFLOW_TRACKING_URI"] == decoy
