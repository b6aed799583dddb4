"""Train one network, or sweep with -m; every run is logged to MLflow.

    python pipelines/train.py model.hidden=100 optim.lr=0.5 trainer.epochs=30 seed=3
    python pipelines/train.py -m model.hidden=16,64,256 optim.lr=0.1,0.5 seed=0,1,2
    python pipelines/train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 model.hidden=16,64

Exit codes: 0 every run finished, 1 a run failed, 2 bad input, 130 Ctrl-C, 143 SIGTERM.
"""

import sys

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab.cli.job import main

    sys.exit(main(sys.argv[1:]))
