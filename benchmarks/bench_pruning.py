"""Successive halving against the full grid it prunes, on Fashion-MNIST:

    python benchmarks/bench_pruning.py [--epochs 9] [--n-jobs 2]

The same sweep twice, each into a fresh store: 24 configs (hidden 16, 32, 64, 128 × lr 0.01,
0.03, 0.1, 0.3, 1, 3) × 2 seeds, trainer.epochs=9, joblib's launcher; first the full grid (every
run to epoch 9), then `hydra.sweeper.prune=halving` (η = 3, rungs at 1, 3 and 9 epochs). Prints
the epochs each trained (the sum of the runs' epochs_run), its wall time, each one's best
config by the mean of its seeds' best_val_accuracy, and Welch's test of the halving winner's
seeds against the full grid's best config's (the halving winner trained to the end is
bit-identical to its full-grid runs, which are compared). Targets: epochs ≤ 40 % of the full
grid's; the two winners not distinguishable at α = 0.05.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ["-m", "data=fashion_mnist", "model.hidden=16,32,64,128",
        "optim.lr=0.01,0.03,0.1,0.3,1.0,3.0", "seed=0,1", "trainer.batch_size=32",
        "tracking.log_model=false", "tracking.experiment=pruning"]


def sweep(store: Path, epochs: int, n_jobs: int, extra: list[str]) -> float:
    """The grid swept into `store`; its wall seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "pipelines" / "train.py"), *GRID,
                           f"trainer.epochs={epochs}", f"tracking.uri=sqlite:///{store}",
                           "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}",
                           f"hydra.sweep.dir={store.parent}/sweep", *extra],
                          cwd=store.parent, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the sweep exited {done.returncode}:\n{done.stderr[-3000:]}")
    print("\n".join(line for line in done.stdout.splitlines()
                    if line.startswith(("rung", "successive", "sweep "))))
    return time.perf_counter() - start


def runs(store: Path):
    from digitlab.tracking.queries import experiment_ids, runs_frame

    uri = f"sqlite:///{store}"
    table = runs_frame(uri, experiment_ids(uri, "pruning"))
    table = table[table["tags.mlflow.parentRunId"].notna()]
    table["config"] = "hidden=" + table["params.model.hidden"] + " lr=" + table["params.optim.lr"]
    return table


def best_config(table) -> str:
    return table.groupby("config")["metrics.best_val_accuracy"].mean().idxmax()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    from digitlab.significance import welch_p

    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        (Path(tmp) / "full").mkdir()
        (Path(tmp) / "halving").mkdir()
        full_store, halving_store = Path(tmp) / "full" / "mlflow.db", Path(tmp) / "halving" / "mlflow.db"
        full_seconds = sweep(full_store, args.epochs, args.n_jobs, [])
        halving_seconds = sweep(halving_store, args.epochs, args.n_jobs,
                                ["hydra.sweeper.prune=halving"])
        full, halved = runs(full_store), runs(halving_store)
    full_epochs, halving_epochs = full["metrics.epochs_run"].sum(), halved["metrics.epochs_run"].sum()
    finished = halved[halved["metrics.epochs_run"] == args.epochs]
    best, winner = best_config(full), best_config(finished)
    values = {c: full.loc[full["config"] == c, "metrics.best_val_accuracy"] for c in (best, winner)}
    p = welch_p(values[winner], values[best]) if winner != best else 1.0
    fraction = halving_epochs / full_epochs
    print(f"\nFashion-MNIST, {full['config'].nunique()} configs × 2 seeds, {args.epochs} epochs, "
          f"joblib n_jobs={args.n_jobs}; {platform.machine()}, {platform.python_version()}")
    print("| | full grid | successive halving (η = 3) | halving ÷ full |\n|---|---|---|---|")
    print(f"| epochs trained | {full_epochs:.0f} | {halving_epochs:.0f} | {fraction:.0%} "
          f"(target ≤ 40 %: {'met' if fraction <= 0.4 else 'missed'}) |")
    print(f"| wall time | {full_seconds:.0f} s | {halving_seconds:.0f} s | "
          f"{halving_seconds / full_seconds:.2f}× |")
    print(f"| best config (mean best_val_accuracy of its seeds) | {best} "
          f"({values[best].mean():.4f}) | {winner} ({values[winner].mean():.4f}) | "
          f"Welch p = {p:.3f}: {'not ' if not p < 0.05 else ''}distinguishable at α = 0.05 |")


if __name__ == "__main__":
    main()
