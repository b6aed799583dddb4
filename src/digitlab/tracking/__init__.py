"""The tracking package, the only one that imports MLflow: the store, runs, params, metrics,
artifacts, the model. It receives records and files from the runner and never calls back into
training.

    store         the store's URI, checks and atomic creation, its one MLflow client (every
                  read and write goes through it); the experiment made ready; its faults told
                  in one line; runs left RUNNING by a dead process, marked KILLED
    runs          the runner's Tracker (FINISHED runs found, new ones opened), parent runs,
                  the run log the runner writes into, a run's end
    epochs        a run's per-epoch metrics: journaled at once, written to the store in batches
    model         the pyfunc model, the registry, loading a model back
    queries       runs read back as tables and histories; files and tags added later
"""


def __getattr__(name: str):
    """`digitlab.tracking.NetworkModel`, the class the code of a model logged by an earlier
    digitlab imports from here (`mlflow.pyfunc.load_model` of such a model needs it)."""
    if name != "NetworkModel":
        raise AttributeError(f"module 'digitlab.tracking' has no attribute {name!r}")
    from digitlab.tracking.model import NetworkModel

    return NetworkModel
