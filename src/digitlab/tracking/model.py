"""The pyfunc model (logged as code, nothing pickled), the registry and loading a model back."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from digitlab.tracking.store import client_for

# the logged model's code (models logged by earlier versions import digitlab.tracking.NetworkModel)
MODEL_CODE = """\
import mlflow
from digitlab.tracking.model import NetworkModel

mlflow.models.set_model(NetworkModel())
"""


class NetworkModel(mlflow.pyfunc.PythonModel):
    """pyfunc model: raw pixels in (one image per row), predicted labels out. Weights are read
    from a plain .npz with allow_pickle=False."""

    def load_context(self, context) -> None:
        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        with np.load(context.artifacts["arrays"], allow_pickle=False) as arrays:
            self.load_arrays(dict(arrays), spec)

    def load_arrays(self, arrays, spec: dict) -> None:
        from digitlab.nn.network import Network

        arrays = dict(arrays)
        self.factor, self.shift = arrays.pop("scale_factor"), arrays.pop("scale_shift")
        self.classes = arrays.pop("classes")
        self.dtype = spec["dtype"]
        self.pixel_max = spec.get("pixel_max")  # None in a spec without it: range unchecked
        self.n_features = spec.get("n_features")
        self.network = Network.from_state(arrays, activation=spec["activation"],
                                          output=spec["output"], loss=spec["loss"],
                                          quirk=spec["quirk"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        """Labels of raw pixel rows: any numbers, whole or not, in the range trained on."""
        x = np.asarray(model_input, dtype=np.float64)
        if x.ndim != 2 or (self.n_features and x.shape[1] != self.n_features):
            raise ValueError(f"expected rows of {self.n_features} pixels, one image per row; "
                             f"found an array of shape {x.shape}")
        if self.pixel_max is not None and x.size and not (
                np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= self.pixel_max):
            raise ValueError(
                f"pixels must be raw values in 0–{self.pixel_max:g}, as the model was trained "
                f"on; found {np.nanmin(x):g}–{np.nanmax(x):g}"
                f"{' and missing values' if not np.all(np.isfinite(x)) else ''} (pass the "
                "pixels unscaled, one image per row)")
        x = x * self.factor + self.shift
        return self.classes[self.network.predict_proba(x.astype(self.dtype)).argmax(axis=1)]

# ---- the model registry and serving ---------------------------------------------------------


def register_run_model(uri: str, run_id: str, name: str, alias: str,
                       tags: dict[str, str]) -> tuple[str, bool]:
    """Point `name@alias` at the run's model: (version, whether a new version was created).
    A run already registered under `name` keeps its version; only the alias moves."""
    client = client_for(uri)
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        version, created = existing[0].version, False
    else:
        outputs = client.get_run(run_id).outputs
        logged = outputs.model_outputs if outputs else []
        if not logged:
            raise LookupError(f"run {run_id} logged no model")
        # MLflow 3 keeps the model as a LoggedModel of the run, addressed by its id
        model_id = logged[-1].model_id
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        # the logged model's own location, not models:/<id>: MLflow's registry looks that up
        # through the process-wide tracking URI, which may name another store
        location = client.get_logged_model(model_id).artifact_location
        version = client.create_model_version(name, location, run_id=run_id, tags=tags,
                                              model_id=model_id).version
        created = True
    client.set_registered_model_alias(name, alias, version)
    return str(version), created


def alias_target(uri: str, name: str, alias: str) -> str | None:
    """The run id `name@alias` points at, or None when there is no such alias."""
    try:
        return client_for(uri).get_model_version_by_alias(name, alias).run_id
    except MlflowException:
        return None


def model_location(uri: str, model_uri: str) -> str:
    """Where the files of `model_uri` are, looked up through the store `uri` names:
    models:/<name>@<alias>, models:/<name>/<version>, models:/<model id>, runs:/<run id>/<name>
    (the run's LoggedModel of that name, or a model among the run's own artifacts), or a
    folder or file URI as it is."""
    client = client_for(uri)
    scheme, _, rest = model_uri.partition(":/")
    if scheme == "models":
        name, at, alias = rest.partition("@")
        if at:
            version = client.get_model_version_by_alias(name, alias).version
            return client.get_model_version_download_uri(name, version)
        name, slash, version = name.partition("/")
        if slash:
            return client.get_model_version_download_uri(name, version)
        return client.get_logged_model(name).artifact_location
    if scheme == "runs":
        run_id, _, path = rest.strip("/").partition("/")
        run = client.get_run(run_id)
        outputs = run.outputs.model_outputs if run.outputs else []
        for output in reversed(outputs):
            logged = client.get_logged_model(output.model_id)
            if logged.name == (path or "model"):
                return logged.artifact_location
        return f"{run.info.artifact_uri.rstrip('/')}/{path}"  # a model among its artifacts
    return model_uri


def load_pyfunc(uri: str, model_uri: str):
    """An MLflow model (models:/name@alias, models:/name/3, runs:/id/model, a folder) and the
    number of pixels per image it expects (from its input schema in models logged with one).
    Its files are found through the store `uri` names, fetched, and loaded from disk."""
    local = download_artifacts(artifact_uri=model_location(uri, model_uri), tracking_uri=uri)
    model = mlflow.pyfunc.load_model(local)
    schema = model.metadata.get_input_schema()
    return model, len(schema.inputs) if schema else model.unwrap_python_model().n_features
