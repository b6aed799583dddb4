"""A run's matplotlib figures, returned to the caller (saving and logging them belongs to the
pipeline; digitlab.reporting makes them where they cost least)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay

from digitlab.evaluation import Evaluation


def confusion_matrix_figure(evaluation: Evaluation, classes: np.ndarray,
                            title: str = "Test confusion matrix") -> Figure:
    # fixed margins: constrained layout measures every label and costs ≈ 0.1 s per figure
    fig = Figure(figsize=(6, 5.5))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.93)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(evaluation.confusion, display_labels=classes).plot(
        ax=ax, colorbar=False, values_format="d")
    ax.set_title(f"{title} (accuracy {evaluation.accuracy:.4f})")
    return fig


def learning_curves_figure(history: Sequence[dict[str, float]], title: str = "") -> Figure:
    """Loss and accuracy per epoch from records' metric dicts (train_*, val_*)."""
    fig = Figure(figsize=(10, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.86 if title else 0.95,
                        wspace=0.22)
    epochs = np.arange(1, len(history) + 1)
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for split in ("train", "val"):
            values = [h.get(f"{split}_{metric}") for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], marker=".",
                        label=split)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, never 2.5
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig
