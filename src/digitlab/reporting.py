"""A run's reports: scikit-learn's classification report (JSON and text) and the two figures
(the confusion matrix, the learning curves), from the run's outputs on its test rows, written in
the run's own process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

DPI = 100
REPORT_FILES = ("classification_report.json", "classification_report.txt",
                "confusion_matrix.png", "learning_curves.png")


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


def write(request: ReportRequest) -> None:
    """Every one of REPORT_FILES, in request.folder."""
    _write_evaluation(request)
    _write_learning_curves(request)


def _write_evaluation(request: ReportRequest) -> None:
    """The classification report and the confusion matrix."""
    from digitlab import figures
    from digitlab.evaluation import evaluate

    result = evaluate(request.y_true, request.proba, request.classes)
    folder = request.folder
    (folder / "classification_report.json").write_text(json.dumps(result.report, indent=2))
    (folder / "classification_report.txt").write_text(result.report_text)
    figures.confusion_matrix_figure(result, request.classes, f"{request.part} confusion matrix"
                                    ).savefig(folder / "confusion_matrix.png", dpi=DPI)


def _write_learning_curves(request: ReportRequest) -> None:
    from digitlab import figures

    figures.learning_curves_figure(request.history, request.title).savefig(
        request.folder / "learning_curves.png", dpi=DPI)
