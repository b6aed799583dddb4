"""digitlab.reporting: a run's reports made by the warm server are the ones the run would make
itself, and a server handler that dies, hangs or loses its command costs the run nothing but the
time."""

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

from conftest import gone
from digitlab import reporting, warm_server


def _request(folder, seed: int = 0) -> reporting.ReportRequest:
    rng = np.random.default_rng(seed)
    history = [{"train_loss": 1 / e, "val_loss": 1.2 / e, "train_accuracy": 1 - 1 / e,
                "val_accuracy": 1 - 1.1 / e} for e in range(1, 6)]
    folder.mkdir(parents=True, exist_ok=True)
    return reporting.ReportRequest(rng.integers(0, 10, 200), rng.random((200, 10)),
                                   np.arange(10), "Test", history, "digits", folder)


@pytest.fixture()
def helper(monkeypatch, tmp_path):
    """This process connected to a warm server of its own, its handler greeted."""
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(warm_server.IDLE_VARIABLE, "0")  # the server ends with the test
    monkeypatch.setattr(warm_server, "_wanted", False)
    monkeypatch.setattr(warm_server, "_connection", None)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    warm_server.use()
    warm_server.start()
    warm_server.begin(os.getpid)()
    yield warm_server._connection
    warm_server.stop()


def test_the_server_makes_what_the_run_would_make_itself(helper, tmp_path):
    reporting.write_here(_request(tmp_path / "here"))
    for seed in (0, 1):  # one handler, request after request
        reporting.write(_request(tmp_path / "helper", seed))()
        assert warm_server._connection is helper
    reporting.write(_request(tmp_path / "helper"))()
    for name in ("confusion_matrix.png", "learning_curves.png"):
        assert np.array_equal(imread(tmp_path / "here" / name), imread(tmp_path / "helper" / name))
    for name in ("classification_report.json", "classification_report.txt"):
        assert (tmp_path / "here" / name).read_text() == (tmp_path / "helper" / name).read_text()
    handler, server = helper.pid, helper.server
    assert handler != os.getpid() and server not in (handler, os.getpid())
    warm_server.stop()
    assert gone(handler) and gone(server)  # idle 0: the server ends with its last command


def test_a_handler_that_died_leaves_the_run_its_reports(helper, tmp_path):
    os.kill(helper.pid, signal.SIGKILL)
    reporting.write(_request(tmp_path))()
    for name in reporting.REPORT_FILES:
        assert (tmp_path / name).stat().st_size > 0
    assert warm_server._connection is None  # the next run makes its own


def test_a_handler_that_does_not_answer_is_killed_and_the_run_makes_them(helper, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(warm_server, "ANSWER_SECONDS", 0.5)
    os.kill(helper.pid, signal.SIGSTOP)
    reporting.write(_request(tmp_path))()
    assert (tmp_path / "classification_report.json").stat().st_size > 0
    assert gone(helper.pid)  # killed, not left stopped


def test_an_error_comes_back_and_the_run_makes_its_reports(helper, tmp_path):
    bad = reporting.ReportRequest(np.zeros(3, int), np.ones((3, 2)), np.arange(2), "Test", [],
                                  "x", tmp_path / "no")
    with pytest.raises(FileNotFoundError):  # made here as well: the same error, raised here
        reporting.write(bad)()


def test_a_handler_ends_when_its_command_is_killed_and_the_server_stays(tmp_path):
    env = {**os.environ, "DIGITLAB_CACHE": str(tmp_path / "cache"),
           warm_server.IDLE_VARIABLE: "30"}
    parent = subprocess.run(
        [sys.executable, "-c", "import os; from digitlab import warm_server as w; w._wanted = True; "
                               "w.start(); w.begin(os.getpid)(); "
                               "print(w._connection.pid, w._connection.server, flush=True); "
                               "os.kill(os.getpid(), 9)"],
        capture_output=True, text=True, timeout=60, env=env)
    assert parent.returncode == -signal.SIGKILL
    handler, server = map(int, parent.stdout.split())
    assert gone(handler)
    try:
        os.kill(server, 0)  # alive, for the next command
    finally:
        os.kill(server, signal.SIGKILL)


def test_a_request_left_unawaited_does_not_answer_for_the_next(helper, tmp_path):
    reporting.write(_request(tmp_path / "first"))  # its run stopped before waiting for it
    time.sleep(2)  # its answer is waiting in the pipe
    reporting.write(_request(tmp_path / "second", seed=1))()
    assert (tmp_path / "second" / "confusion_matrix.png").exists()
    assert (tmp_path / "second" / "learning_curves.png").exists()
    assert warm_server._connection is helper


def test_a_process_whose_jobs_run_in_workers_ends_its_handler_for_good(helper, tmp_path):
    pid = helper.pid
    warm_server.not_here()  # a joblib or Ray sweep's driver
    assert gone(pid) and warm_server._connection is None
    warm_server.start()  # as each run does after its skip check
    assert warm_server._connection is None
    reporting.write(_request(tmp_path))()  # made in this process
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0


def test_a_handler_that_takes_no_more_of_a_large_request_is_killed_and_the_run_makes_them(
        helper, tmp_path, monkeypatch):
    monkeypatch.setattr(warm_server, "ANSWER_SECONDS", 0.5)
    os.kill(helper.pid, signal.SIGSTOP)
    small = _request(tmp_path)
    rng = np.random.default_rng(0)  # MNIST's 10,000 test rows: far more than a pipe holds
    large = reporting.ReportRequest(rng.integers(0, 10, 10_000), rng.random((10_000, 10)),
                                    small.classes, "Test", small.history, "mnist", tmp_path)
    reporting.write(large)()
    assert (tmp_path / "classification_report.json").stat().st_size > 0
    assert gone(helper.pid)  # killed, not left stopped


def test_curves_the_forked_child_could_not_draw_are_drawn_by_its_parent(tmp_path):
    # in a process of its own: the handler forks, and a forked test runner is not what it forks
    script = f"""
import os, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_reporting import _request
from digitlab import reporting, warm_server
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
