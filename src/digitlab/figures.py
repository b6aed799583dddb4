"""A run's evaluation with scikit-learn's metrics, and its matplotlib figures, returned to the
caller (saving and logging them belongs to the pipeline; digitlab.reporting makes them where they
cost least)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
)


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


def _mosaic(images: np.ndarray, shape: tuple[int, int], columns: int,
            above: int = 0) -> np.ndarray:
    """Images (n × pixels) as one array of tiles, `columns` to a row, NaN between them (drawn
    blank), with `above` blank rows over each tile for its caption: one imshow instead of a
    subplot per tile (64 subplots cost ≈ 0.5 s)."""
    rows = -(-len(images) // columns)
    h, w = shape
    out = np.full((rows * (h + above + 1) - 1, columns * (w + 1) - 1), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top = r * (h + above + 1) + above
        out[top:top + h, c * (w + 1):c * (w + 1) + w] = image.reshape(shape)
    return out


def first_layer_weights_figure(weights: np.ndarray, shape: tuple[int, int],
                               limit: int = 64) -> Figure:
    """Each of the first `limit` hidden units' incoming weights as an image, on one shared
    colour scale, as scikit-learn's "Visualization of MLP weights on MNIST" draws them."""
    units = weights[:, :limit].T.astype(np.float64)  # one row per hidden unit
    columns = min(8, len(units))
    scale = 0.5 * float(np.abs(units).max()) or 1.0  # the example's vmin/vmax: half the extremes
    fig = Figure(figsize=(1.1 * columns, 1.1 * -(-len(units) // columns) + 0.5))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.9)
    ax = fig.add_subplot()
    ax.imshow(_mosaic(units, shape, columns), cmap="gray", vmin=-scale, vmax=scale)
    ax.set_axis_off()
    ax.set_title(f"first layer: the weights into {len(units)} of {weights.shape[1]} hidden "
                 f"units (shared scale ±{scale:.2g})", fontsize="small")
    return fig


def misclassified_figure(images: np.ndarray, shape: tuple[int, int], true: np.ndarray,
                         predicted: np.ndarray, confidence: np.ndarray, part: str,
                         limit: int = 50) -> Figure:
    """Up to `limit` misclassified images, the most confident mistakes first, each titled with
    its true label, the predicted one and the network's confidence in it."""
    wrong = np.flatnonzero(true != predicted)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    columns, h, w = 10, *shape
    above = -(-h * 2 // 5)  # a caption band of 2/5 of a tile's height, over the tile, not on it
    rows = max(1, -(-len(wrong) // columns))
    # 1.1 inches a tile's width; the height in proportion, the band included
    fig = Figure(figsize=(11, 1.1 * rows * (h + above + 1) / (w + 1) + 0.5))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.4 / fig.get_figheight())
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(f"{part} images misclassified: {len(np.flatnonzero(true != predicted))} of "
                 f"{len(true)}; {len(wrong)} shown, most confident first (true → predicted, "
                 "confidence)", fontsize="medium")
    if not len(wrong):
        return fig
    ax.imshow(_mosaic(images[wrong].astype(np.float64), shape, columns, above), cmap="gray_r")
    for i, row in enumerate(wrong):
        r, c = divmod(i, columns)
        ax.text(c * (w + 1) + w / 2, r * (h + above + 1) + above - 0.5,
                f"{true[row]}→{predicted[row]} {confidence[row]:.2f}", fontsize=10,
                color="#a93226", ha="center", va="bottom")
    return fig


def layer_curves_figure(history: Sequence[dict[str, float]],
                        initial: dict[str, float]) -> Figure | None:
    """Per layer, ‖∂C/∂bˡ‖ (log scale) and the saturated share per epoch, epoch 0 the untrained
    network (digitlab.nn.network); None when the run logged no diagnostics."""
    rows = [initial, *history]
    layers = sorted({k.split(".")[0] for k in initial if k.startswith("layer")},
                    key=lambda name: int(name.removeprefix("layer")))
    if not layers:
        return None
    fig = Figure(figsize=(10, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.25)
    speed, saturation = fig.subplots(1, 2)
    epochs = np.arange(len(rows))
    colours = layer_colours(len(layers))
    for layer, colour in zip(layers, colours):
        for ax, key in ((speed, "grad_b_norm"), (saturation, "saturated")):
            values = [row.get(f"{layer}.{key}", np.nan) for row in rows]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, label=layer.replace("layer", "layer "), color=colour)
    speed.set_yscale("log")
    speed.set_title("‖∂C/∂bˡ‖ on the probe rows (speed of learning)", fontsize="small")
    saturation.set_title("share of saturated units", fontsize="small")
    for ax in (speed, saturation):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch (0: before training)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    return fig


def layer_colours(n: int) -> list:
    """n colours no two alike: matplotlib's ten, its twenty, or n steps of viridis beyond."""
    from matplotlib import colormaps

    if n <= 20:
        palette = colormaps["tab10" if n <= 10 else "tab20"]
        return [palette(i) for i in range(n)]
    return [colormaps["viridis"](i / (n - 1)) for i in range(n)]
