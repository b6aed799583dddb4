"""How a command's process ends: its exit code, without the interpreter's slow teardown."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
from typing import NoReturn

from digitlab.cli.preflight import refuse_renamed_keys
from digitlab.cli.processes import child_pids


def exit_now(code: int | str | None) -> NoReturn:
    """sys.exit without the interpreter's teardown, which frees the module graph of MLflow,
    SQLAlchemy, pandas and matplotlib one object at a time: 1–2 s at the end of every command.
    By now the store's writes are committed and files closed; output and logs are flushed here."""
    _end_idle_joblib_workers()
    if "digitlab.warm_server" in sys.modules:
        sys.modules["digitlab.warm_server"].stop()
    # workers still running (a stopped sweep), a Ray driver's connection: only the normal exit
    # ends them cleanly
    if child_pids(but_trackers=True) or "ray" in sys.modules:
        sys.exit(code)
    if isinstance(code, str):  # sys.exit("message") prints it and exits 1
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _end_idle_joblib_workers() -> None:
    """End joblib's reusable workers now that the launcher has its results (the normal exit
    waits while each tears down its own imports), then run the exit handlers that unregister
    their semaphores and temporary folders, so the resource trackers find nothing left."""
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    if getattr(loky, "_executor", None) is not None:
        loky._executor.shutdown(wait=True)
        atexit._run_exitfuncs()


def command(name: str, work) -> NoReturn:
    """A pipeline's whole entry point: conf/<name>.yaml composed by Hydra (the command line's
    overrides applied, --help, --cfg, -m), `work` run on it, and the process ended with its
    exit code."""
    import hydra

    from digitlab.cli.preflight import check_command_line
    from digitlab.cli.project import CONF_DIR

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        check_command_line(sys.argv[1:], name)
    except SystemExit as exc:
        exit_now(exc.code)
    run_and_exit(hydra.main(version_base="1.3", config_path=str(CONF_DIR),
                            config_name=name)(work))


def run_and_exit(main) -> NoReturn:
    """Runs a pipeline's Hydra main and exits with its code through `exit_now`."""
    # output piped into `head` ends the command quietly, as it ends any Unix tool
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        refuse_renamed_keys(sys.argv[1:])
        main()
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)
