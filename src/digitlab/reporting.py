"""A run's reports: scikit-learn's classification report (JSON and text) and the figures (the
confusion matrix, the learning curves, the first layer's weights as images, the misclassified
images, the per-layer diagnostics), from the run's outputs on its test rows, written in the
run's own process."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

DPI = 100
REPORT_FILES = ("classification_report.json", "classification_report.txt",
                "confusion_matrix.png", "learning_curves.png", "first_layer_weights.png",
                "misclassified.png")
LAYER_FILE = "layer_curves.png"  # with trainer.diagnostics=layers
# where a run keeps a test set: its prediction per test image, for McNemar's test of two runs
PREDICTIONS_FILE = "test_predictions.npz"


@dataclass(frozen=True)
class ReportRequest:
    """What a run's reports are made of, and the folder they are written to (REPORT_FILES)."""

    y_true: np.ndarray
    proba: np.ndarray  # the network's outputs on those rows
    classes: np.ndarray
    part: str  # which rows: "Test", or "Training" where a recipe keeps no test set
    history: Sequence[dict[str, float]]  # the per-epoch metrics, for the learning curves
    title: str
    folder: Path
    images: np.ndarray  # the scored rows as pixels, one image per row
    image_shape: tuple[int, int]
    first_weights: np.ndarray  # W¹, inputs × hidden units
    initial_layers: dict = field(default_factory=dict)  # the diagnostics before training


def write(request: ReportRequest) -> None:
    """Every one of REPORT_FILES, in request.folder."""
    _write_evaluation(request)
    _write_learning_curves(request)
    _write_network_views(request)
    if request.part == "Test":
        write_predictions(request)


def images_digest(images: np.ndarray) -> str:
    """The scored images' identity: their shape, dtype and bytes."""
    import hashlib

    array = np.ascontiguousarray(images)
    header = f"{array.shape}{array.dtype.str}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def write_predictions(request: ReportRequest) -> None:
    """true and predicted class per test image (integers, loadable without pickle) and the
    images' digest, so that two runs are compared image by image only on the same images."""
    predicted = request.classes[request.proba.argmax(axis=1)]
    np.savez_compressed(request.folder / PREDICTIONS_FILE,
                        true=np.asarray(request.y_true).astype(np.int64),
                        predicted=np.asarray(predicted).astype(np.int64),
                        images_sha256=np.array(images_digest(request.images)))


def read_predictions(data: bytes) -> dict[str, np.ndarray | str]:
    """A run's PREDICTIONS_FILE, from its bytes."""
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {"true": arrays["true"], "predicted": arrays["predicted"],
                "images_sha256": str(arrays["images_sha256"])}


def _write_evaluation(request: ReportRequest) -> None:
    """The classification report and the confusion matrix."""
    from digitlab import figures

    result = figures.evaluate(request.y_true, request.proba, request.classes)
    folder = request.folder
    (folder / "classification_report.json").write_text(json.dumps(result.report, indent=2))
    (folder / "classification_report.txt").write_text(result.report_text)
    figures.confusion_matrix_figure(result, request.classes, f"{request.part} confusion matrix"
                                    ).savefig(folder / "confusion_matrix.png", dpi=DPI)


def _write_learning_curves(request: ReportRequest) -> None:
    from digitlab import figures

    figures.learning_curves_figure(request.history, request.title).savefig(
        request.folder / "learning_curves.png", dpi=DPI)


def _write_network_views(request: ReportRequest) -> None:
    """What the network learned (its first layer) and where it fails; its layers per epoch."""
    from digitlab import figures

    folder, shape = request.folder, request.image_shape
    images = request.images if request.images.shape[1] == shape[0] * shape[1] else None
    weights = request.first_weights if request.first_weights.shape[0] == shape[0] * shape[1] \
        else None
    if weights is not None:
        figures.first_layer_weights_figure(weights, shape).savefig(
            folder / "first_layer_weights.png", dpi=DPI)
    if images is not None:
        predicted = request.classes[request.proba.argmax(axis=1)]
        confidence = request.proba.max(axis=1)
        figures.misclassified_figure(images, shape, request.y_true, predicted, confidence,
                                     request.part).savefig(folder / "misclassified.png", dpi=DPI)
    layers = figures.layer_curves_figure(request.history, request.initial_layers)
    if layers is not None:
        layers.savefig(folder / LAYER_FILE, dpi=DPI)
