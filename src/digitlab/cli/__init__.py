"""The pipelines' glue, the one layer of the package that imports Hydra: each `pipelines/*.py`
is a thin entry point over these modules, one job each.

    project     where the project is, git provenance, what Hydra must know before composing
    errors      bad input: one line, exit code 2
    composition a sweep's job configs composed once per config-group choice; unknown keys
    preflight   the command line and every job's config checked before anything runs
    output_files a command's files written whole or not at all
    ray_auth    Ray's token authentication for the cluster launcher
    processes   a sweep's workers: stopped through their pool, ended with their driver
    sweep       the sweep's parent run before the jobs, their outcomes and the summary after
    job         one job: typed config → runner → tracker → outcome
    exit        a pipeline's entry point and its exit code
    search      the Optuna search behind pipelines/search.py
    reproduce   published vs reproduced, behind pipelines/reproduce.py
"""

from digitlab.cli.errors import EXIT_BAD_INPUT, fail
from digitlab.cli.exit import command
from digitlab.cli.output_files import refuse_folder, write_whole
from digitlab.cli.preflight import (
                                    check_writable,
                                    checked_store,
                                    one_line,
                                    preflight,
                                    prepare_store,
                                    refuse_unknown_keys,
                                    to_run_config,
)
from digitlab.cli.project import git_state, prepare_process, project_root

__all__ = ["EXIT_BAD_INPUT", "project_root", "prepare_process", "check_writable", "checked_store", "command",
           "fail", "git_state", "one_line", "preflight", "prepare_store", "refuse_folder",
           "refuse_unknown_keys", "to_run_config", "write_whole"]
