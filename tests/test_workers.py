"""digitlab.cli.processes.warm_joblib_workers: the joblib launcher's workers start while the sweep
gets ready, import what a job imports, and are the very processes the launcher's Parallel uses."""

from __future__ import annotations

import os
import sys
import time

from hydra.core.config_store import ConfigStore
from joblib import Parallel, delayed
from omegaconf import OmegaConf

from digitlab.cli import processes


def _pid_and_modules() -> tuple[int, bool]:
    time.sleep(0.3)  # a job long enough that both workers take some
    return os.getpid(), all(name in sys.modules for name in processes.JOB_MODULES)


def test_the_launchers_parallel_runs_its_jobs_on_the_warmed_workers():
    import hydra_plugins.hydra_joblib_launcher.config  # noqa: F401  (stores its schema)

    schema = ConfigStore.instance().load("hydra/launcher/joblib.yaml").node
    launcher = OmegaConf.to_container(OmegaConf.merge(schema, {"n_jobs": 2}))
    processes.warm_joblib_workers(launcher)
    processes.wait_for_warm_workers()
    found = Parallel(**processes.joblib_arguments(launcher))(delayed(_pid_and_modules)() for _ in range(6))
    assert all(warm for _, warm in found)  # no job paid the imports: the workers had them
    assert len({pid for pid, _ in found}) == 2 and os.getpid() not in {p for p, _ in found}
