"""A pipeline script run in the test's own process, as `python <script> <argv>` would run it: the
same command line, working folder and environment, its output on file descriptors 1 and 2 (so
the lines of a joblib worker it starts are caught too) and its exit code; everything a command
changes in its process (the environment, the working folder, signal handlers, logging, Hydra's
and the sweep's per-command state) is put back afterwards, so the next command starts as a new
process would."""

from __future__ import annotations

import io
import logging
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def _captured_output() -> Iterator[list[str]]:
    """File descriptors 1 and 2, and sys.stdout/sys.stderr over them, into two temporary files;
    their text is in the yielded list once the block ends."""
    result: list[str] = []
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    saved_streams = sys.stdout, sys.stderr
    for stream in saved_streams:
        stream.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    os.dup2(files[0].fileno(), 1)
    os.dup2(files[1].fileno(), 2)
    sys.stdout, sys.stderr = (io.TextIOWrapper(io.FileIO(fd, "w", closefd=False),
                                               encoding="utf-8", errors="replace",
                                               line_buffering=True) for fd in (1, 2))
    try:
        yield result
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in zip((1, 2), saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        for file in files:
            file.seek(0)
            result.append(file.read().decode("utf-8", errors="replace"))
            file.close()


@contextmanager
def _logging_restored() -> Iterator[None]:
    """Every logger's handlers, level and flags as they were: Hydra configures logging per job."""
    loggers = [logging.getLogger()] + [logging.getLogger(name)
                                       for name in list(logging.Logger.manager.loggerDict)]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers]
    try:
        yield
    finally:
        for lg, handlers, level, propagate, disabled in saved:
            for handler in lg.handlers:
                if handler not in handlers:
                    handler.close()
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
        for name in list(logging.Logger.manager.loggerDict):  # loggers the command made
            lg = logging.getLogger(name)
            if lg not in loggers:
                for handler in list(lg.handlers):
                    handler.close()
                    lg.removeHandler(handler)


def _new_command_state() -> None:
    """What a process starts with and one command leaves behind: the stop signals it has seen
    (digitlab.stopping), Hydra's global instance."""
    from hydra.core.global_hydra import GlobalHydra

    from digitlab import stopping

    stopping._depth, stopping._pending, stopping._stopping = 0, None, False
    GlobalHydra.instance().clear()


def run_script(script: Path, argv: list[str], cwd: Path, env: dict | None = None,
               fresh: bool = True) -> subprocess.CompletedProcess:
    """`script` run as __main__ with `argv`; `fresh=False` leaves the state an earlier command
    left (stop signals seen, Hydra's global instance), as a second call in one process does."""
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE)
    saved_handlers = {signum: signal.getsignal(signum) for signum in signals}
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("PYTEST_CURRENT_TEST", None)  # MLflow changes behaviour under pytest
    os.environ.update(env or {})
    if fresh:
        _new_command_state()
    code: int = 0
    try:
        os.chdir(cwd)
        sys.argv = [str(script), *argv]
        with _logging_restored(), warnings.catch_warnings(), _captured_output() as output:
            warnings.simplefilter("ignore")  # as PYTHONWARNINGS=ignore
            # MLflow sets its loggers' level once, when it is imported, from
            # MLFLOW_LOGGING_LEVEL, which a pipeline sets first; here a test may have imported it
            logging.getLogger("mlflow").setLevel(
                (os.environ.get("MLFLOW_LOGGING_LEVEL") or "INFO").upper())
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:  # sys.exit("message"): the message on stderr, exit code 1
                    print(exc.code, file=sys.stderr)
                    code = 1
            except Exception:  # as the interpreter ends on an uncaught exception
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for signum, handler in saved_handlers.items():
            signal.signal(signum, handler)
        if fresh:
            _new_command_state()
    return subprocess.CompletedProcess([sys.executable, str(script), *argv], code, *output)
