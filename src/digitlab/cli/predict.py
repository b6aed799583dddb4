"""The predict command's logic; its usage and what it does: pipelines/predict.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore

from digitlab import cli
from digitlab.cli import project
from digitlab.config import StoreConfig


@dataclass
class PredictConfig:
    input: str = "???"  # a CSV of pixels: Kaggle's test.csv (or train.csv, labels first)
    output: str = "submission.csv"  # ImageId,Label with ImageId counted from 1, as Kaggle wants
    # any MLflow model URI: models:/name@alias, models:/name/3, runs:/id/model
    model_uri: str = "models:/digitlab@champion"
    tracking: StoreConfig = field(default_factory=StoreConfig)


ConfigStore.instance().store(name="base_predict", node=PredictConfig)


def _check_files(cfg: PredictConfig) -> tuple[Path, Path]:
    """The input, a regular file, and the output, writable and not the input."""
    source, output = Path(cfg.input), Path(cfg.output)
    if not source.is_file():  # a folder, a FIFO (reading it would wait forever), nothing
        what = ("a folder" if source.is_dir() else "not a regular file" if source.exists()
                else "file not found")
        cli.fail(f"input={cfg.input}: {what}; give the CSV of pixels to predict (Kaggle's "
                 "test.csv layout: pixel0,pixel1,…).")
    cli.refuse_output(output, "output", reads=[source])
    cli.check_writable(output.parent, "output")
    return source, output


def run(cfg: PredictConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    source, output = _check_files(cfg)
    import numpy as np
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from digitlab.data import DataError
    from digitlab.data.csv import read_kaggle_csv
    from digitlab.tracking.model import load_pyfunc

    uri = cli.checked_store(cfg.tracking.uri)
    try:
        model, n_pixels = load_pyfunc(uri, cfg.model_uri)
    except (MlflowException, OSError) as exc:
        cli.fail(f"model_uri={cfg.model_uri}: cannot load it from {uri} "
                    f"({str(exc).splitlines()[0]}); register one with python "
                    "pipelines/register.py, or pass model_uri=runs:/<run id>/model.")
    width = _pixels_in_header(source)
    if width is not None and width != n_pixels:
        cli.fail(f"input={cfg.input}: {width} pixels per image, but {_which_model(uri, cfg, model)} "
                 f"reads {n_pixels}; give a CSV of {n_pixels}-pixel images "
                 f"({project.pipeline('export_kaggle_csv.py')} dataset=digits labels=false "
                 "out=pixels.csv writes the digits'), or a model trained on images of this size "
                 "(model_uri=runs:/<run id>/model, or register.py run_id=<run id>)")
    try:
        cells = read_kaggle_csv(source, n_pixels)
    except DataError as exc:
        cli.fail(f"input=: {exc} (the model reads {n_pixels} pixels per image)")
    labeled = cells.shape[1] == n_pixels + 1
    pixels = cells[:, 1:] if labeled else cells
    try:
        labels = np.asarray(model.predict(pixels.astype(np.int64)))
    except ValueError as exc:  # the model's own check: pixels outside the range it was trained on
        cli.fail(f"input={cfg.input}: {cli.one_line(exc)}; model {cfg.model_uri}")
    submission = pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1), "Label": labels})
    output.parent.mkdir(parents=True, exist_ok=True)
    cli.write_whole(output, lambda partial: submission.to_csv(partial, index=False), "output")
    print(f"{len(labels)} predictions by {cfg.model_uri} written to {output}")
    if labeled:
        print(f"accuracy against the file's labels: {np.mean(labels == cells[:, 0]):.4f} (a "
              "measure of the model only on images it did not train on; the test accuracy it "
              "logged is that)")



def _pixels_in_header(source: Path) -> int | None:
    """The pixel columns the CSV's header names (pixel0, pixel1, …), or None without such a
    header (the reader then says what is wrong)."""
    with source.open(encoding="utf-8", errors="replace") as file:
        header = [cell.strip().strip('"') for cell in file.readline().split(",")]
    pixels = [c for c in header if c.startswith("pixel")]
    return len(pixels) if pixels and len(pixels) >= len(header) - 1 else None


def _which_model(uri: str, cfg: PredictConfig, model) -> str:
    """`model <uri> (run <name>, <id8>, trained on <dataset>)`, as far as the store tells."""
    from mlflow.exceptions import MlflowException

    from digitlab.tracking.queries import get_run

    run_id = getattr(model.metadata, "run_id", None)
    if not run_id:
        return f"model {cfg.model_uri}"
    try:
        run = get_run(uri, run_id)
    except MlflowException:
        return f"model {cfg.model_uri} (run {run_id[:8]})"
    dataset = run.data.params.get("data.name", "unknown data")
    return f"model {cfg.model_uri} (run {run.info.run_name!r}, {run_id[:8]}, trained on {dataset})"
