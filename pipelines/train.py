"""Train one network, or sweep with -m; every run is logged to MLflow.

    python pipelines/train.py model.hidden=100 optim.lr=0.5 trainer.epochs=30 seed=3
    python pipelines/train.py -m model.hidden=16,64,256 optim.lr=0.1,0.5 seed=0,1,2
    python pipelines/train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 model.hidden=16,64
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import common


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    common.run_job(cfg)


if __name__ == "__main__":
    interrupted = False
    try:
        main()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        code = common.finish_sweep(interrupted or sys.exc_info()[0] is not None)
    sys.exit(code)
