"""The pipelines' glue, the one layer of the package that imports Hydra: each `pipelines/*.py`
is a thin entry point over these modules, one job each, through `command` below.

    project     bad input's one line and exit 2; where the project is, git provenance, what
                Hydra must know before composing, a command's process settings; output files
                written whole or not at all; commands and links to paste
    preflight   the command line and every job's config checked before anything runs: a
                sweep's jobs, each config once; keys a schema does not know
    ray_auth    Ray's token authentication for the cluster launcher
    sweep       the Sweep: its parent run before the jobs, their outcomes and the summary
                after; its workers stopped through their pool, ended with their driver
    job         train.py's command (preflight, Hydra, the sweep ended, the exit code), its
                task function; one job: typed config → runner → tracker → outcome
    search      the Optuna search behind pipelines/search.py
    reproduce   published vs reproduced, behind pipelines/reproduce.py
"""

import signal
import sys
from typing import NoReturn

from digitlab.cli.preflight import (
    check_command_line,
    check_writable,
    checked_store,
    one_line,
    preflight,
    prepare_store,
    refuse_unknown_keys,
    to_run_config,
)
from digitlab.cli.project import (
    EXIT_BAD_INPUT,
    conf_dir,
    fail,
    git_state,
    prepare_process,
    project_root,
    refuse_output,
    write_whole,
)

__all__ = ["EXIT_BAD_INPUT", "check_writable", "checked_store", "command", "fail", "git_state",
           "one_line", "preflight", "prepare_process", "prepare_store", "project_root",
           "refuse_output", "refuse_unknown_keys", "to_run_config", "write_whole"]


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
