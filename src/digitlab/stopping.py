"""Stopping a run on Ctrl-C or SIGTERM without breaking the tracking store.

Python runs a signal handler between any two bytecodes. Raised in the middle of a database write,
the handler's exception can leave that write's transaction open: the process then holds SQLite's
lock itself, and marking the run KILLED fails with "database is locked" (the run stays RUNNING
and the sweep goes on). So the handler raises at once, except inside `deferred()` blocks, where
the signal waits until the block is done (a tracking write takes milliseconds). A second stop
signal while the first is being handled (an impatient second Ctrl-C) is told to wait: it cannot
cut the cleanup that marks the runs KILLED in two.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Iterator


class Terminated(BaseException):
    """Raised on SIGTERM: the run ends KILLED, as on Ctrl-C."""


_depth = 0  # nesting of deferred() blocks; handlers only ever run in the main thread
_pending: int | None = None
_stopping = False  # a stop signal was raised: later ones are told to wait


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(f"stopped by signal {signum}")


def on_stop_signal(signum: int, frame) -> None:
    """Signal handler: KeyboardInterrupt for SIGINT, Terminated otherwise, held while deferred;
    once one was raised (or is held), later ones only say that the stop is under way."""
    global _pending, _stopping
    if _stopping or _pending is not None:
        print("digitlab: stopping already: the runs are being marked KILLED (a few seconds)",
              file=sys.stderr)
        return
    if _depth:
        _pending = signum
    else:
        _stopping = True
        _raise_for(signum)


def install(*signums: int) -> None:
    """Handle these signals (default SIGINT and SIGTERM) with `on_stop_signal`. Setting SIGINT
    explicitly also makes Ctrl-C work in a job started in the background, where it is ignored."""
    global _stopping
    _stopping = False
    for signum in signums or (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_stop_signal)


def recorded() -> None:
    """The stop is recorded (every run marked, every line printed): further stop signals are
    ignored while the interpreter exits, whose teardown of MLflow's and SQLAlchemy's modules
    takes a second and, cut short by a second Ctrl-C, would end the process by the signal
    rather than with its exit code."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


@contextmanager
def deferred() -> Iterator[None]:
    """A block that a stop signal does not cut in two; the signal is raised when it ends.
    Also usable as a decorator."""
    global _depth, _pending, _stopping
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending is not None:
            signum, _pending, _stopping = _pending, None, True
            _raise_for(signum)
