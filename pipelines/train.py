"""Train one network, or sweep with -m; every run is logged to MLflow.

    python pipelines/train.py model.hidden=100 optim.lr=0.5 trainer.epochs=30 seed=3
    python pipelines/train.py -m model.hidden=16,64,256 optim.lr=0.1,0.5 seed=0,1,2
    python pipelines/train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 model.hidden=16,64

Exit codes: 0 every run finished, 1 a run failed, 2 bad input, 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from digitlab import cli
from digitlab.cli import job, sweep
from digitlab.stopping import Terminated, install, recorded


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    job.run_job(cfg)


if __name__ == "__main__":
    install()  # Ctrl-C and SIGTERM end the run KILLED, never in the middle of a store write
    status = 1
    try:
        cli.preflight(sys.argv[1:], "train")
        main()
        status = 0
    except KeyboardInterrupt:
        status = 130
    except Terminated:
        status = 143
    except SystemExit as exc:  # Hydra reports a bad override or config with exit code 1
        status = cli.EXIT_BAD_INPUT if exc.code == 1 and not sweep.STARTED else exc.code
    finally:  # the sweep's parent run is ended whatever happened (Hydra skips on_multirun_end)
        summary = sweep.finish_sweep(interrupted=status in (130, 143))
    if status in (130, 143):
        recorded()
    sys.exit(status or summary)
