"""Evaluation with scikit-learn's metrics (the figures of an evaluation: digitlab.figures)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, log_loss


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    log_loss: float
    report: dict  # classification_report(output_dict=True)
    report_text: str
    confusion: np.ndarray  # rows = true class, columns = predicted class


def evaluate(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> Evaluation:
    """Accuracy, log loss, per-class report and confusion matrix of predicted probabilities."""
    y_pred = classes[np.argmax(proba, axis=1)]
    # sigmoid outputs need not sum to 1: normalise rows so log loss sees a distribution
    p = np.clip(proba.astype(np.float64), 1e-15, None)
    p /= p.sum(axis=1, keepdims=True)
    names = [str(c) for c in classes]
    return Evaluation(
        accuracy=float(accuracy_score(y_true, y_pred)),
        log_loss=float(log_loss(y_true, p, labels=classes)),
        report=classification_report(y_true, y_pred, labels=classes, target_names=names,
                                     output_dict=True, zero_division=0),
        report_text=classification_report(y_true, y_pred, labels=classes, target_names=names,
                                          digits=4, zero_division=0),
        confusion=confusion_matrix(y_true, y_pred, labels=classes),
    )
