"""digitlab.reporting: a run's reports, made in the run's own process, are every file it names,
and they say what the run's outputs say."""

from __future__ import annotations

import json

import numpy as np
from matplotlib.image import imread

from digitlab import reporting


def _request(folder, seed: int = 0) -> reporting.ReportRequest:
    rng = np.random.default_rng(seed)
    history = [{"train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 1 - 1 / e,
                "val_accuracy": 1 - 1.1 / e, "layer1.grad_b_norm": 0.1 / e,
                "layer1.saturated": 0.01 * e} for e in range(1, 6)]
    folder.mkdir(parents=True, exist_ok=True)
    return reporting.ReportRequest(rng.integers(0, 10, 200), rng.random((200, 10)),
                                   np.arange(10), "Test", history, "digits", folder,
                                   rng.integers(0, 17, (200, 64)), (8, 8), rng.normal(size=(64, 32)),
                                   {"layer1.grad_b_norm": 0.2, "layer1.saturated": 0.0})


def test_every_report_is_written_and_the_report_counts_the_rows(tmp_path):
    request = _request(tmp_path / "here")
    reporting.write(request)
    for name in reporting.REPORT_FILES:
        assert (tmp_path / "here" / name).stat().st_size > 0, name
    report = json.loads((tmp_path / "here" / "classification_report.json").read_text())
    assert report["macro avg"]["support"] == len(request.y_true)
    predicted = request.proba.argmax(axis=1)
    assert report["accuracy"] == np.mean(predicted == request.y_true)
    assert imread(tmp_path / "here" / "confusion_matrix.png").ndim == 3
    assert (tmp_path / "here" / reporting.LAYER_FILE).stat().st_size > 0


def test_the_misclassified_figure_shows_the_most_confident_mistakes_first():
    from digitlab.figures import misclassified_figure

    true = np.array([0, 1, 2, 3, 4])
    predicted = np.array([0, 7, 2, 8, 9])
    confidence = np.array([0.9, 0.55, 0.8, 0.99, 0.7])
    fig = misclassified_figure(np.zeros((5, 64)), (8, 8), true, predicted, confidence, "Test")
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == ["3→8 0.99", "4→9 0.70", "1→7 0.55"]
    assert "3 of 5" in fig.axes[0].get_title()


def test_the_same_request_gives_the_same_files(tmp_path):
    reporting.write(_request(tmp_path / "a"))
    reporting.write(_request(tmp_path / "b"))
    for name in (*reporting.REPORT_FILES, reporting.LAYER_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
