"""Published vs reproduced, one row per experiment of conf/experiment/ (docs/references.md).

    python pipelines/reproduce.py only='fashion-*' seeds=3
    python pipelines/reproduce.py only=[sklearn-digits-*,rolisz-digits]
    python pipelines/reproduce.py only='nielsen-ch1-*' mnist_root=/path/to/mnist n_jobs=2
    python pipelines/reproduce.py only='blog-network*' kaggle_csv=/path/to/train.csv

Every training run goes to the MLflow experiment `reproduce` as a child of one parent run, via
`pipelines/train.py -m` with the joblib launcher. The table (id, dataset, recipe, published,
reproduced, Δ, verdict, curve |Δ|) is printed, written to <out>/reproduce.md and logged to the
parent as Markdown and as an MLflow table, with a figure per published curve.
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import reproduce

    cli.command("reproduce", reproduce.run)
