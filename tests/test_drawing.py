"""digitlab.drawing: a run's figures drawn by a helper process are the ones the run would draw
itself, and a helper that dies, hangs or loses its parent costs the run nothing but the time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from matplotlib.image import imread

from digitlab import drawing
from digitlab.evaluation import evaluate


def _requests(folder, seed: int = 0) -> list[drawing.FigureRequest]:
    rng = np.random.default_rng(seed)
    classes = np.arange(10)
    result = evaluate(rng.integers(0, 10, 200), rng.random((200, 10)), classes)
    history = [{"train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 1 - 1 / e,
                "val_accuracy": 1 - 1.1 / e} for e in range(1, 6)]
    return [drawing.FigureRequest("confusion_matrix_figure", (result, classes, "Test"),
                                  folder / "confusion_matrix.png"),
            drawing.FigureRequest("learning_curves_figure", (history, "digits"),
                                  folder / "learning_curves.png")]


@pytest.fixture()
def helper(monkeypatch):
    monkeypatch.setattr(drawing, "_wanted", False)
    monkeypatch.setattr(drawing, "_helper", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    drawing.use_helper()
    drawing.start()
    yield drawing._helper
    drawing.stop()


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_helper_draws_what_the_run_would_draw_itself(helper, tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "helper").mkdir()
    drawing.draw_here(_requests(tmp_path / "here"))
    for seed in (0, 1):  # one helper, request after request
        drawing.draw(_requests(tmp_path / "helper", seed))()
        assert drawing._helper is helper
    drawing.draw(_requests(tmp_path / "helper"))()
    for name in ("confusion_matrix.png", "learning_curves.png"):
        assert np.array_equal(imread(tmp_path / "here" / name), imread(tmp_path / "helper" / name))
    pid = helper.process.pid
    drawing.stop()
    assert helper.process.returncode == 0 and _gone(pid)


def test_a_helper_that_died_leaves_the_run_its_figures(helper, tmp_path):
    helper.process.kill()
    helper.process.wait()
    drawing.draw(_requests(tmp_path))()
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    assert (tmp_path / "learning_curves.png").stat().st_size > 0
    assert drawing._helper is None  # the next run draws its own


def test_a_helper_that_does_not_answer_is_killed_and_the_run_draws(helper, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr(drawing, "ANSWER_SECONDS", 0.5)
    os.kill(helper.process.pid, signal.SIGSTOP)
    drawing.draw(_requests(tmp_path))()
    assert (tmp_path / "learning_curves.png").stat().st_size > 0
    assert helper.process.returncode is not None  # killed, not left stopped


def test_a_drawing_error_comes_back_and_the_run_draws_its_figures(helper, tmp_path):
    bad = drawing.FigureRequest("learning_curves_figure",
                                ([{"train_loss": 1.0, "train_accuracy": 0.5}], "x"),
                                tmp_path / "no" / "a.png")
    with pytest.raises(FileNotFoundError):  # drawn here as well: the same error, raised here
        drawing.draw([bad])()


def test_the_helper_ends_when_its_parent_is_killed():
    parent = subprocess.run(
        [sys.executable, "-c", "import os; from digitlab import drawing; drawing._wanted = True; "
                               "drawing.start(); print(drawing._helper.process.pid, flush=True);"
                               " os.kill(os.getpid(), 9)"],
        capture_output=True, text=True, timeout=60)
    assert parent.returncode == -signal.SIGKILL
    assert _gone(int(parent.stdout.split()[0]))


def test_a_request_left_unawaited_does_not_answer_for_the_next(helper, tmp_path):
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    drawing.draw(_requests(tmp_path / "first"))  # its run stopped before waiting for it
    time.sleep(2)  # its answer is waiting in the pipe
    drawing.draw(_requests(tmp_path / "second", seed=1))()
    assert (tmp_path / "second" / "confusion_matrix.png").exists()
    assert (tmp_path / "second" / "learning_curves.png").exists()
    assert drawing._helper is helper
