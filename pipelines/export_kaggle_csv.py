"""A Kaggle "Digit Recognizer" train.csv written from MNIST's training files, so the blog
network (experiment=blog-network, blog-network-fixed) runs on its own kind of data: Kaggle's file
holds 42,000 labelled MNIST images in this layout, header label,pixel0,…,pixel783, pixels 0–255.

    python pipelines/export_kaggle_csv.py mnist_root=/path/to/mnist out=train.csv
    python pipelines/reproduce.py only='blog-network*' kaggle_csv=train.csv

The rows are the first `rows` images of MNIST's training file, in its order (which images
Kaggle took is not published); the file is written under a temporary name and renamed.
"""

import digitlab

if __name__ == "__main__":
    digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads
    from digitlab import cli
    from digitlab.cli import export_kaggle_csv

    cli.command("export_kaggle_csv", export_kaggle_csv.run)
