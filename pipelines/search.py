"""A Bayesian (or random, or grid) hyperparameter search with Optuna that survives interruption.

    python pipelines/search.py                         # conf/search.yaml's space, 20 trials
    python pipelines/search.py n_trials=50 study=fashion "overrides=['data=fashion_mnist']"
    python pipelines/search.py space.optim.lr.high=1 '+space.seed={type:categorical,choices:[0,1]}'

The study lives in a SQLite file (mlruns/optuna.db unless `storage=`). Run the same command again
after a crash, Ctrl-C or kill and the search resumes: finished trials stay, a trial that was cut
off is run again with the same parameters, and the study stops at `n_trials` finished trials.
Each trial is one training run (the same runner as pipelines/train.py), logged to MLflow as a
child of the study's parent run; a failing or divergent trial is recorded (trial FAIL, run
FAILED with its error) and the search goes on. The best trial is printed and tagged.
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import search

    cli.command("search", search.run)
