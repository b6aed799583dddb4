"""A run's reports, made where they cost least: scikit-learn's classification report (JSON and
text) and the two figures, from the run's outputs on its test rows. A run keeps one core busy;
where the machine has another, the warm server (digitlab.warm_server), which has imported
scikit-learn's metrics and matplotlib, writes them (≈ 0.12 s, the two figures at once) while the
run logs its weights and model, so a run whose split is cached never imports scikit-learn
itself. Where there is no server (a parallel sweep's workers, any process that did not ask for
it) or it fails, the run makes them in its own process, so a run never lacks them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from digitlab import warm_server

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


def write_here(request: ReportRequest) -> None:
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


def _write_in_two(request: ReportRequest) -> None:
    """write_here on two cores: the learning curves in a forked child (≈ 5 ms: the imports are
    shared), the rest meanwhile; a run waits for its reports, so its own core is idle then.
    Curves the child did not write are drawn here."""
    try:
        child = os.fork()
    except OSError:
        child = None
    if child == 0:
        status = 1
        try:
            _write_learning_curves(request)
            status = 0
        finally:  # the child never returns into its handler
            os._exit(status)
    try:
        _write_evaluation(request)
    finally:
        drawn = child is not None and os.waitpid(child, 0)[1] == 0
    if not drawn:
        _write_learning_curves(request)


def write(request: ReportRequest) -> Callable[[], None]:
    """Begin writing the reports of `request` (in the warm server, where there is one); the
    function returned returns once every one is written."""
    return warm_server.begin(_write_in_two, request, here=write_here)
