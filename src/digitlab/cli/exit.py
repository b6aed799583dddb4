"""How a command's process starts and ends: its settings applied, its command line checked,
Hydra run on its config, and its exit code through sys.exit."""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

from digitlab.cli.preflight import check_command_line
from digitlab.cli.project import conf_dir, prepare_process


def command(name: str, work) -> NoReturn:
    """A pipeline's whole entry point: conf/<name>.yaml composed by Hydra (the command line's
    overrides applied, --help, --cfg, -m), `work` run on it, and the process ended with its
    exit code."""
    import hydra

    # output piped into `head` ends the command quietly, as it ends any Unix tool
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    prepare_process()
    check_command_line(sys.argv[1:], name)
    hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name=name)(work)()
    sys.exit(0)
