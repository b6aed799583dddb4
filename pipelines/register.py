"""Hand a model on: register the best run of a sweep (or a given run) as a version of a
registered model and point the alias `champion` at it.

    python pipelines/register.py                         # best run of the latest sweep
    python pipelines/register.py sweep=<parent run id> name=digits-mlp
    python pipelines/register.py run_id=<run id>

"Best" is the highest `metric` (default best_val_accuracy: chosen on validation, so the test
score stays an honest estimate) among the sweep's FINISHED runs. Serve it with
    mlflow models predict -m models:/<name>@champion -i pixels.csv -t csv --env-manager local
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import register

    cli.command("register", register.run)
