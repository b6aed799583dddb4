"""The export_kaggle_csv command's logic; its usage and what it does:
pipelines/export_kaggle_csv.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore

from digitlab import cli


@dataclass
class ExportConfig:
    mnist_root: Optional[str] = None  # folder of the four official MNIST IDX files
    rows: int = 42000  # Kaggle's train.csv holds 42,000 labelled images
    out: str = "train.csv"  # written under a temporary name, then renamed


ConfigStore.instance().store(name="base_export_kaggle_csv", node=ExportConfig)


def run(cfg: ExportConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    import numpy as np
    import pandas as pd

    from digitlab.config import DataConfig
    from digitlab.data import DataError, load_dataset

    if not 1 <= cfg.rows <= 60000:
        cli.fail(f"rows={cfg.rows}: MNIST's training file has 60,000 images; give 1–60000")
    out = Path(cfg.out)
    cli.refuse_folder(out, "out")
    cli.check_writable(out.parent, "out")
    try:
        mnist = load_dataset(DataConfig(name="mnist", root=cfg.mnist_root))
    except DataError as exc:
        cli.fail(f"{exc} (export_kaggle_csv.py takes mnist_root=/folder)")
    cells = np.column_stack([mnist.y_train[:cfg.rows], mnist.x_train[:cfg.rows]])
    frame = pd.DataFrame(cells, columns=["label", *(f"pixel{i}" for i in range(784))])
    out.parent.mkdir(parents=True, exist_ok=True)
    cli.write_whole(out, lambda partial: frame.to_csv(partial, index=False), "out")
    print(f"{len(frame)} images of {mnist.source} written to {out} "
          f"(labels {np.bincount(cells[:, 0], minlength=10).tolist()})")

