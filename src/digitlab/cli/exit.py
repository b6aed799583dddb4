"""How a command's process ends: its exit code through sys.exit, after Hydra has run it."""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

from digitlab.cli.preflight import refuse_renamed_keys


def command(name: str, work) -> NoReturn:
    """A pipeline's whole entry point: conf/<name>.yaml composed by Hydra (the command line's
    overrides applied, --help, --cfg, -m), `work` run on it, and the process ended with its
    exit code."""
    import hydra

    from digitlab.cli.preflight import check_command_line
    from digitlab.cli.project import CONF_DIR

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    check_command_line(sys.argv[1:], name)
    run_and_exit(hydra.main(version_base="1.3", config_path=str(CONF_DIR),
                            config_name=name)(work))


def run_and_exit(main) -> NoReturn:
    """Runs a pipeline's Hydra main and exits with its code."""
    # output piped into `head` ends the command quietly, as it ends any Unix tool
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    refuse_renamed_keys(sys.argv[1:])
    main()
    sys.exit(0)
