"""A run's reports, made where they cost least: scikit-learn's classification report (JSON and
text) and the two figures, from the run's outputs on its test rows. A run keeps one core busy;
where the machine has another, a helper process imports scikit-learn's metrics and matplotlib
(≈ 1.2 s) while the command composes and the run trains, and writes the reports (≈ 0.12 s, the
two figures at once) while the run logs its weights and model, so a run whose split is cached
never imports scikit-learn itself. Jobs running in parallel workers have no idle core and make
their own, as does any caller that did not ask for the helper (`use_helper`).

The helper is one per command, in a session of its own (Ctrl-C is its parent's to handle), and it
ends when its parent does: its stdin closes. Whenever it fails, dies or does not answer, the
reports are made in the run's own process instead, so a run never lacks them.

    python -m digitlab.reporting    the helper itself: requests on stdin, answers on stdout
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

DPI = 100
# a helper that has not answered, or taken a request, by then is stuck: it is killed and the run
# makes its reports
ANSWER_SECONDS = 60.0
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
        finally:  # the child never returns into the helper's loop
            os._exit(status)
    try:
        _write_evaluation(request)
    finally:
        drawn = child is not None and os.waitpid(child, 0)[1] == 0
    if not drawn:
        _write_learning_curves(request)


def _send(fd: int, message: Any, seconds: float | None = None) -> None:
    """`message` written to `fd`; with `seconds`, a reader that takes none of it for that long
    is a TimeoutError. A request outgrows the pipe's buffer (a test set's outputs), so it goes
    in pieces of PIPE_BUF, each of which a writable pipe takes without blocking."""
    data = pickle.dumps(message)
    view = memoryview(struct.pack("<Q", len(data)) + data)
    while view:
        if seconds is not None and not select.select([], [fd], [], seconds)[1]:
            raise TimeoutError(f"the helper took no request in {seconds:g} s")
        view = view[os.write(fd, view[:select.PIPE_BUF]):]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("the other end of the report helper's pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> Any:
    (size,) = struct.unpack("<Q", _read_exactly(fd, 8))
    return pickle.loads(_read_exactly(fd, size))


class _Helper:
    def __init__(self) -> None:
        # one BLAS thread: the helper's arithmetic is small
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digitlab.reporting"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0,
            start_new_session=True)
        self.unanswered = False

    def write(self, request: ReportRequest) -> Callable[[], None]:
        self._drain()
        _send(self.process.stdin.fileno(), request, ANSWER_SECONDS)
        self.unanswered = True
        return self._answer

    def _answer(self) -> None:
        if not self.unanswered:  # read already, by the next request's _drain
            return
        answer = self.process.stdout.fileno()
        if not select.select([answer], [], [], ANSWER_SECONDS)[0]:
            raise TimeoutError(f"no answer in {ANSWER_SECONDS:g} s")
        self.unanswered = False
        error = _receive(answer)
        if error:
            raise RuntimeError(error)

    def _drain(self) -> None:
        """The answer to a request whose run stopped before waiting for it (its folder may be
        gone, so it may be an error), read before the next request: each answer is then the
        answer to its own request."""
        if self.unanswered:
            try:
                self._answer()
            except RuntimeError:
                pass

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


_helper: _Helper | None = None
_wanted = False


def use_helper() -> None:
    """This process's runs have their reports made by a helper from now on, where the machine has
    a core for it; `not_here` undoes it for a process whose jobs run in workers."""
    global _wanted
    _wanted = (os.cpu_count() or 1) > 1


def start() -> None:
    """The helper started, if wanted and not running, so that it has imported scikit-learn and
    matplotlib (≈ 1.2 s) by the time the run needs its reports."""
    global _helper, _wanted
    if _wanted and _helper is None:
        try:
            _helper = _Helper()
        except OSError as exc:
            log.warning("reports are made in this process: no helper (%s)", exc)
            _wanted = False


def not_here() -> None:
    """This process runs no job itself (its launcher's workers do): no helper, now or later."""
    global _wanted
    stop()
    _wanted = False


def write(request: ReportRequest) -> Callable[[], None]:
    """Begin writing the reports of `request`; the function returned returns once every one is
    written."""
    if _helper is None:
        write_here(request)
        return lambda: None
    try:
        waiting = _helper.write(request)
    except (OSError, EOFError, TimeoutError):  # the helper died or hangs
        waiting = None

    def wait() -> None:
        try:
            if waiting is not None:
                waiting()
                return
        except (OSError, EOFError, TimeoutError, RuntimeError) as exc:
            log.warning("the report helper failed (%s); making the reports here", exc)
        except BaseException:  # a stop signal: the helper's answer is left unread
            not_here()
            raise
        not_here()  # the helper failed: this process makes its own reports from now on
        write_here(request)

    return wait


def stop() -> None:
    """The helper ended, at the end of a command. Every answer a run needed has been read by
    now, so the helper is killed rather than waited for: it may still be importing."""
    global _helper
    if _helper is not None:
        _helper.kill()
        _helper = None


def _serve() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.dup(1)
    os.dup2(2, 1)  # a stray print cannot break the answers' framing
    from digitlab import garbage

    with garbage.imports_held():
        import digitlab.evaluation  # noqa: F401  (the imports the helper is there to pay early)
        import digitlab.figures  # noqa: F401

    while True:
        try:
            request = _receive(0)
        except EOFError:  # the run's process ended
            break
        try:
            _write_in_two(request)
            answer = None
        except Exception as exc:
            answer = f"{type(exc).__name__}: {exc}"
        _send(answers, answer)
    os._exit(0)


if __name__ == "__main__":
    _serve()
