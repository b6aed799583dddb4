"""digitlab.reporting: a run's reports made by a helper process are the ones the run would make
itself, and a helper that dies, hangs or loses its parent costs the run nothing but the time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from digitlab import reporting


def _request(folder, seed: int = 0) -> reporting.ReportRequest:
    rng = np.random.default_rng(seed)
    history = [{"train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 1 - 1 / e,
                "val_accuracy": 1 - 1.1 / e} for e in range(1, 6)]
    folder.mkdir(parents=True, exist_ok=True)
    return reporting.ReportRequest(rng.integers(0, 10, 200), rng.random((200, 10)),
                                   np.arange(10), "Test", history, "digits", folder)


@pytest.fixture()
def helper(monkeypatch):
    monkeypatch.setattr(reporting, "_wanted", False)
    monkeypatch.setattr(reporting, "_helper", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    reporting.use_helper()
    reporting.start()
    yield reporting._helper
    reporting.stop()


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_helper_makes_what_the_run_would_make_itself(helper, tmp_path):
    reporting.write_here(_request(tmp_path / "here"))
    for seed in (0, 1):  # one helper, request after request
        reporting.write(_request(tmp_path / "helper", seed))()
        assert reporting._helper is helper
    reporting.write(_request(tmp_path / "helper"))()
    for name in ("confusion_matrix.png", "learning_curves.png"):
        assert np.array_equal(imread(tmp_path / "here" / name), imread(tmp_path / "helper" / name))
    for name in ("classification_report.json", "classification_report.txt"):
        assert (tmp_path / "here" / name).read_text() == (tmp_path / "helper" / name).read_text()
    pid = helper.process.pid
    reporting.stop()
    assert _gone(pid)


def test_a_helper_that_died_leaves_the_run_its_reports(helper, tmp_path):
    helper.process.kill()
    helper.process.wait()
    reporting.write(_request(tmp_path))()
    for name in reporting.REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 0
    assert reporting._helper is None  # the next run makes its own


def test_a_helper_that_does_not_answer_is_killed_and_the_run_makes_them(helper, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(reporting, "ANSWER_SECONDS", 0.5)
    os.kill(helper.process.pid, signal.SIGSTOP)
    reporting.write(_request(tmp_path))()
    assert (tmp_path / "classification_report.json").stat().st_size > 0
    assert helper.process.returncode is not None  # killed, not left stopped


def test_an_error_comes_back_and_the_run_makes_its_reports(helper, tmp_path):
    bad = reporting.ReportRequest(np.zeros(3, int), np.ones((3, 2)), np.arange(2), "Test", [],
                                  "x", tmp_path / "no")
    with pytest.raises(FileNotFoundError):  # made here as well: the same error, raised here
        reporting.write(bad)()


def test_the_helper_ends_when_its_parent_is_killed():
    parent = subprocess.run(
        [sys.executable, "-c", "import os; from digitlab import reporting; reporting._wanted = True; "
                               "reporting.start(); print(reporting._helper.process.pid, flush=True);"
                               " os.kill(os.getpid(), 9)"],
        capture_output=True, text=True, timeout=60)
    assert parent.returncode == -signal.SIGKILL
    assert _gone(int(parent.stdout.split()[0]))


def test_a_request_left_unawaited_does_not_answer_for_the_next(helper, tmp_path):
    reporting.write(_request(tmp_path / "first"))  # its run stopped before waiting for it
    time.sleep(2)  # its answer is waiting in the pipe
    reporting.write(_request(tmp_path / "second", seed=1))()
    assert (tmp_path / "second" / "confusion_matrix.png").exists()
    assert (tmp_path / "second" / "learning_curves.png").exists()
    assert reporting._helper is helper


def test_a_process_whose_jobs_run_in_workers_ends_its_helper_for_good(helper, tmp_path):
    pid = helper.process.pid
    reporting.not_here()  # a joblib or Ray sweep's driver
    assert _gone(pid) and reporting._helper is None
    reporting.start()  # as each run does after its skip check
    assert reporting._helper is None
    reporting.write(_request(tmp_path))()  # made in this process
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0


def test_a_helper_that_takes_no_more_of_a_large_request_is_killed_and_the_run_makes_them(
        helper, tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "ANSWER_SECONDS", 0.5)
    os.kill(helper.process.pid, signal.SIGSTOP)
    small = _request(tmp_path)
    rng = np.random.default_rng(0)  # MNIST's 10,000 test rows: far more than a pipe holds
    large = reporting.ReportRequest(rng.integers(0, 10, 10_000), rng.random((10_000, 10)),
                                    small.classes, "Test", small.history, "mnist", tmp_path)
    reporting.write(large)()
    assert (tmp_path / "classification_report.json").stat().st_size > 0
    assert helper.process.returncode is not None  # killed, not left stopped


def test_curves_the_forked_child_could_not_draw_are_drawn_by_the_helper(tmp_path):
    # in a process of its own: the helper forks, and a forked test runner is not what it forks
    script = f"""
import os, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_reporting import _request
from digitlab import reporting
parent, draw = os.getpid(), reporting._write_learning_curves
def in_the_helper_only(request):
    if os.getpid() != parent:
        (request.folder / "child-failed").touch()
        raise RuntimeError("the child cannot draw")
    draw(request)
reporting._write_learning_curves = in_the_helper_only
reporting._write_in_two(_request(Path(sys.argv[1])))
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "two")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "two" / "child-failed").exists()  # it did fail, in the child
    reporting.write_here(_request(tmp_path / "here"))
    for name in reporting.REPORT_FILES:
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()
