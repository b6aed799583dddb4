"""What the per-layer diagnostics (trainer.diagnostics=layers) cost against the epoch they
follow, on MNIST, for the recipes the reproduction table trains on it:

    python benchmarks/bench_diagnostics.py [--root ../mnist] [--epochs 2]

For each recipe: the median seconds of an epoch (the training pass alone, as a run times it)
and of one diagnostics call on the 1,000 probe rows, in the same process, alternating, and
their ratio. The target: ≤ 5 % of an epoch, which is why the diagnostics are on by default.
Written to diagnostics_results.md.
"""

from __future__ import annotations

import digitlab

digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads

import argparse
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

from digitlab.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainerConfig
from digitlab.nn.classifier import Classifier
from digitlab.nn.init import seed_streams
from digitlab.nn.network import probe_rows
from digitlab.runner import load_split

RESULTS = Path(__file__).with_name("diagnostics_results.md")
TARGET = 0.05  # of an epoch's seconds
# name: (hidden, activation, output, loss, batch, lr) — the MNIST rows of docs/references.md
RECIPES = {
    "nielsen-ch1-30: 784-30-10 sigmoid, b10": ([30], "sigmoid", "sigmoid", "quadratic", 10, 3.0),
    "nielsen-ch5-depth-4: 784-30×4-10, b10": ([30] * 4, "sigmoid", "sigmoid", "binary_ce", 10,
                                               0.1),
    "mnist-relu-100: 784-100-10 relu, b128": ([100], "relu", "softmax", "cross_entropy", 128,
                                              0.1),
    "lecun98-1000: 784-1000-10 sigmoid, b10": ([1000], "sigmoid", "sigmoid", "quadratic", 10,
                                               0.5),
}


def measure(root: str, epochs: int) -> list[dict]:
    rows = []
    for name, (hidden, activation, output, loss, batch, lr) in RECIPES.items():
        cfg = RunConfig(data=DataConfig(name="mnist", root=root),
                        model=ModelConfig(hidden=hidden, activation=activation, output=output,
                                          loss=loss),
                        optim=OptimConfig(lr=lr), trainer=TrainerConfig(batch_size=batch))
        split = load_split(cfg)
        clf = Classifier(cfg.model, cfg.optim, cfg.trainer, seed=0)
        clf.start(split.x_train, split.y_train, split.classes)
        probe = probe_rows(len(split.y_train), seed_streams(0).probe)
        x, y = split.x_train[probe], split.y_train[probe]
        clf.layer_diagnostics(x, y)  # a first call: the weights to compare with
        epoch_seconds, diagnostics_seconds = [], []
        for _ in range(epochs):
            start = time.perf_counter()
            clf.partial_fit(split.x_train, split.y_train, split.classes)
            epoch_seconds.append(time.perf_counter() - start)
            start = time.perf_counter()
            clf.layer_diagnostics(x, y)
            diagnostics_seconds.append(time.perf_counter() - start)
        epoch, diagnostics = (statistics.median(epoch_seconds),
                              statistics.median(diagnostics_seconds))
        rows.append({"recipe": name, "epoch": epoch, "diagnostics": diagnostics,
                     "ratio": diagnostics / epoch})
        print(f"{name}: epoch {epoch:.2f} s, diagnostics {diagnostics * 1000:.1f} ms, "
              f"{100 * diagnostics / epoch:.2f} % of an epoch")
    return rows


def table(rows: list[dict], epochs: int) -> str:
    lines = [f"Per-layer diagnostics against an MNIST epoch ({date.today()}, {platform.machine()}, "
             f"{os.cpu_count()} cores; median of {epochs} epochs; "
             "`python benchmarks/bench_diagnostics.py`)", "",
             "| recipe | epoch (s) | diagnostics on 1,000 rows (ms) | share of the epoch | "
             f"target ≤ {TARGET:.0%} |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['recipe']} | {row['epoch']:.2f} | {1000 * row['diagnostics']:.1f} | "
                     f"{100 * row['ratio']:.2f} % | {'met' if row['ratio'] <= TARGET else 'missed'}"
                     " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("DIGITLAB_MNIST_ROOT"),
                        help="the folder of MNIST's four IDX files ($DIGITLAB_MNIST_ROOT)")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if not args.root:
        parser.error("give --root (the folder of MNIST's four IDX files) or DIGITLAB_MNIST_ROOT")
    text = table(measure(args.root, args.epochs), args.epochs)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
