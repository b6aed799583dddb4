"""The tags digitlab sets on MLflow runs, each named once (docs/mlflow.md says what each holds)."""

# a run's identity: its config and its data's digest (runner.config_hash); and that digest
IDENTITY = "digitlab.config_hash"
DATA_DIGEST = "data.sha256"
GIT_COMMIT, GIT_DIRTY = "git.commit", "git.dirty"
OVERRIDES = "digitlab.overrides"  # the command line's overrides (a search trial's values)
PARENT = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under this parent
# a sweep's parent run, and its runs
JOBS, COMMAND, SWEEP_DIR = "digitlab.jobs", "digitlab.command", "digitlab.sweep_dir"
SWEEP_ID, JOB = "digitlab.sweep_id", "digitlab.job"
REUSED = "digitlab.reused"  # FINISHED runs a sweep skipped (then digitlab.reused.2, .3, …)
NOTE = "mlflow.note.content"  # MLflow's own: a run's description in the UI
# a reproduce run's parent
ONLY, SEEDS = "digitlab.only", "digitlab.seeds"
# an Optuna search's parent run, and its trials
STUDY, STORAGE, N_TRIALS, METRIC = ("digitlab.study", "digitlab.storage", "digitlab.n_trials",
                                    "digitlab.metric")
TRIAL, BEST, BEST_RUN_ID, BEST_TRIAL = ("digitlab.trial", "digitlab.best", "digitlab.best_run_id",
                                        "digitlab.best_trial")
# a search trial its pruner stopped, or a run successive halving stopped at a rung: FINISHED at
# that epoch (its identity says so); the rung (1, 2, …) a halving sweep's run last trained in
PRUNED, PRUNED_EPOCH, RUNG = "digitlab.pruned", "digitlab.pruned_epoch", "digitlab.rung"
RERUN_OF = "digitlab.rerun_of"
RUN_NAME = "digitlab.run_name"  # a registered model version's run
# where a run's process lives (dead processes' runs are marked KILLED) and its epoch journal
HOST, PID, JOURNAL_DIR = "digitlab.host", "digitlab.pid", "digitlab.journal_dir"
# what a run's numbers depend on besides its config, its data and its code (runner.numerics)
PYTHON, NUMPY, BLAS, BLAS_THREADS, MACHINE = ("env.python", "env.numpy", "env.blas",
                                              "env.blas_threads", "env.machine")
NUMERICS = (PYTHON, NUMPY, BLAS, BLAS_THREADS, MACHINE)
