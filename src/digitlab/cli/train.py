"""train.py's command: every job checked, then one run or a sweep through Hydra, the sweep
ended whatever happened, and the exit code."""

from __future__ import annotations

import hydra

from digitlab.cli.errors import EXIT_BAD_INPUT
from digitlab.cli.job import TrainCommand
from digitlab.cli.preflight import preflight
from digitlab.cli.project import conf_dir, prepare_process
from digitlab.cli.sweep import finish_sweep
from digitlab.stopping import Terminated, install, recorded


def main(argv: list[str]) -> int:
    """The exit code: 0 every run finished, 1 a run failed, 2 bad input, 130 Ctrl-C, 143
    SIGTERM. Hydra reads the command line from sys.argv, which must hold `argv`."""
    prepare_process()
    install()  # Ctrl-C and SIGTERM end the run KILLED, never in the middle of a store write
    command, status = TrainCommand(), 1
    try:
        command.checked = preflight(argv, "train")
        hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(
            command)()
        status = 0
    except KeyboardInterrupt:
        status = 130
    except Terminated:
        status = 143
    except SystemExit as exc:  # Hydra reports a bad override or config with exit code 1
        status = EXIT_BAD_INPUT if exc.code == 1 and not command.started else exc.code
    finally:  # the sweep's parent run is ended whatever happened
        summary = finish_sweep(command.sweep, command.started,
                               interrupted=status in (130, 143))
    if status in (130, 143):
        recorded()
    return status or summary


