"""The export_kaggle_csv command's logic; its usage and what it does:
pipelines/export_kaggle_csv.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore

from digitlab import cli

DATASETS = ("mnist", "digits")
KAGGLE_ROWS = 42000  # Kaggle's train.csv holds 42,000 labelled MNIST images


@dataclass
class ExportConfig:
    dataset: str = "mnist"  # mnist (the IDX files in mnist_root) or digits (scikit-learn's 8×8)
    mnist_root: Optional[str] = None  # folder of the four official MNIST IDX files
    rows: Optional[int] = None  # the first rows; null: 42,000 of MNIST, all 1,797 digits
    # false: pixels only, Kaggle's test.csv layout, what `mlflow models predict` reads
    labels: bool = True
    out: str = "train.csv"  # written under a temporary name, then renamed


ConfigStore.instance().store(name="base_export_kaggle_csv", node=ExportConfig)


def run(cfg: ExportConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    import numpy as np
    import pandas as pd

    from digitlab.config import DataConfig
    from digitlab.data import DataError, load_dataset

    if cfg.dataset not in DATASETS:
        cli.fail(f"dataset={cfg.dataset}: expected one of {', '.join(DATASETS)}")
    if cfg.dataset == "digits" and cfg.mnist_root is not None:
        cli.fail("mnist_root= with dataset=digits: the digits ship with scikit-learn; leave "
                 "mnist_root out, or export MNIST with dataset=mnist")
    out = Path(cfg.out)
    root = Path(cfg.mnist_root) if cfg.mnist_root else None
    cli.refuse_output(out, "out", reads=list(root.iterdir()) if root and root.is_dir() else [])
    cli.check_writable(out.parent, "out")
    try:
        dataset = load_dataset(DataConfig(name=cfg.dataset, root=cfg.mnist_root))
    except DataError as exc:
        cli.fail(f"{exc} (export_kaggle_csv.py takes mnist_root=/folder)")
    available = len(dataset.y_train)
    rows = cfg.rows if cfg.rows is not None else (
        KAGGLE_ROWS if cfg.dataset == "mnist" else available)
    if not 1 <= rows <= available:
        cli.fail(f"rows={rows}: {dataset.source} has {available:,} training images; give "
                 f"1–{available}")
    pixels = [f"pixel{i}" for i in range(dataset.x_train.shape[1])]
    labels = dataset.y_train[:rows].astype(np.uint8)
    cells = dataset.x_train[:rows].astype(np.uint8)
    frame = (pd.DataFrame(np.column_stack([labels, cells]), columns=["label", *pixels])
             if cfg.labels else pd.DataFrame(cells, columns=pixels))
    out.parent.mkdir(parents=True, exist_ok=True)
    cli.write_whole(out, lambda partial: frame.to_csv(partial, index=False), "out")
    print(f"{len(frame)} images of {dataset.source} ({len(pixels)} pixels each"
          f"{', labels first' if cfg.labels else ''}) written to {out} "
          f"(labels {np.bincount(labels, minlength=10).tolist()})")

