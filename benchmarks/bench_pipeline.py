"""What a sweep pays besides training, measured on real runs of pipelines/train.py:

    python benchmarks/bench_pipeline.py

1. a second load of the 70k Fashion-MNIST images (the parsed .npy cache, memory-mapped);
2. the fixed cost per run on the digits: (sweep wall time − Σ train_seconds) ÷ runs of an 8-run
   sweep, split into per run and per command by a 2-run sweep beside it;
3. tracking's share of a 5-epoch 784-100-10 Fashion-MNIST run (tracking on vs off), with a fresh
   store and into the existing one;
4. a 16-run Fashion-MNIST sweep with the joblib launcher and 2 jobs against the same sweep run
   sequentially, beside what two processes gain at all on this machine: the same training
   passes (one BLAS thread, no tracking) in two processes at once against one after the other;
5. the peak RSS of a 784-784-10 Fashion-MNIST run against its arrays (dataset in float32 +
   weights + one batch of activations) and against a process that only imports the same code.
Every step runs in fresh processes with its own store and cache under a temporary folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "pipelines" / "train.py")
RESULTS = Path(__file__).with_name("pipeline_results.md")


def python(*args: str, env: dict, cwd: Path) -> tuple[float, str]:
    """Wall seconds and stdout of a fresh Python process; fails loudly on a non-zero exit."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(args[:3])}… failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def peak_rss_mb(args: list[str], env: dict, cwd: Path) -> float:
    """Peak RSS of one fresh process: a wrapper whose only child it is reports its ru_maxrss."""
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
               "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return float(python("-c", wrapper, sys.executable, *args, env=env, cwd=cwd)[1]) / 1024


# one 784-100-10 pass over 20k random rows at batch 128, one BLAS thread: a job's compute alone
PASS = """
import time, numpy as np
from digitlab.config import ModelConfig, OptimConfig, TrainerConfig
from digitlab.nn.classifier import Classifier
rng = np.random.default_rng(0)
x, y = rng.random((20000, 784), dtype=np.float32), rng.integers(0, 10, 20000)
clf = Classifier(ModelConfig(hidden=[100], activation="relu"), OptimConfig(lr=0.1),
                 TrainerConfig(batch_size=128), 0)
start = time.perf_counter()
for _ in range(3):
    clf.partial_fit(x, y, classes=np.arange(10))
print(time.perf_counter() - start)
"""


def two_process_ratio(env: dict, cwd: Path) -> tuple[float, float, float]:
    """(ratio, together, one after the other): the wall time of two identical compute-only
    processes started together over the sum of their times alone. 0.5 is two free cores."""
    alone = sum(float(python("-c", PASS, env=env, cwd=cwd)[1]) for _ in range(2))
    procs = [subprocess.Popen([sys.executable, "-c", PASS], cwd=cwd, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    together = max(float(p.communicate()[0]) for p in procs)
    return together / alone, together, alone


def train_seconds(uri: str, experiment: str = "digitlab-digits") -> list[float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'",
                              max_results=1000)
    return [r.data.metrics["train_seconds"] for r in runs if "train_seconds" in r.data.metrics]


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "DIGITLAB_CACHE": str(tmp / "cache"), "PYTHONWARNINGS": "ignore"}
        env.pop("MLFLOW_TRACKING_URI", None)
        load = ("import time; from digitlab.config import DataConfig; "
                "from digitlab.data import load_dataset; s = time.perf_counter(); "
                "load_dataset(DataConfig(name='fashion_mnist')); print(time.perf_counter() - s)")
        first = float(python("-c", load, env=env, cwd=tmp)[1])
        second = float(python("-c", load, env=env, cwd=tmp)[1])
        rows.append(("second load of the 70k Fashion-MNIST images", f"{second:.3f} s",
                     "≤ 0.3 s", f"first (parse + cache): {first:.1f} s"))

        beyond_training = {}  # sweep wall time − Σ training time, by the number of runs
        for runs in (2, 8):
            uri = f"sqlite:///{tmp / f'fixed{runs}' / 'mlflow.db'}"
            wall, _ = python(TRAIN, "-m", "seed=" + ",".join(map(str, range(runs))),
                             "trainer.epochs=5", f"tracking.uri={uri}", env=env, cwd=tmp)
            beyond_training[runs] = wall - sum(train_seconds(uri))
        # the two sweeps differ by 6 runs: the slope is what one more run costs, the rest is
        # what every command pays once (imports, a fresh store, Hydra, the parent run, exit)
        per_run = (beyond_training[8] - beyond_training[2]) / 6
        per_command = beyond_training[8] - 8 * per_run
        rows.append(("fixed cost per run, 8-run digits sweep", f"{beyond_training[8] / 8:.2f} s",
                     "≤ 0.5 s", f"= {per_run:.2f} s per run + {per_command:.1f} s per command "
                     "(from the 2- and 8-run sweeps)"))

        recipe = ["data=fashion_mnist", "model.hidden=100", "trainer.epochs=5",
                  "trainer.batch_size=128", "optim.lr=0.1", "model.activation=relu"]
        off, _ = python(TRAIN, *recipe, "tracking=off", f"hydra.run.dir={tmp / 'off'}",
                        env=env, cwd=tmp)
        store = f"tracking.uri=sqlite:///{tmp / 'on' / 'mlflow.db'}"
        on, _ = python(TRAIN, *recipe, store, env=env, cwd=tmp)
        rows.append(("tracking's share of a 5-epoch 784-100-10 Fashion-MNIST run",
                     f"{(on - off) / on:.0%}", "≤ 5 %", f"{on:.1f} s tracked, {off:.1f} s not"))
        # the store exists from the second run of a project on: no schema to create
        again, _ = python(TRAIN, *recipe, store, "tracking.skip_finished=false", env=env,
                          cwd=tmp)
        rows.append(("the same, a later run into the project's existing store",
                     f"{(again - off) / again:.0%}", "≤ 5 %",
                     f"{again:.1f} s tracked, {off:.1f} s not"))

        sweep = ["-m", "data=fashion_mnist", "model.hidden=32,64,100,128", "seed=0,1,2,3",
                 "trainer.epochs=1", "trainer.batch_size=128", "optim.lr=0.1",
                 "model.activation=relu", "tracking.log_model=false"]
        sequential, _ = python(TRAIN, *sweep, f"tracking.uri=sqlite:///{tmp / 'seq' / 'm.db'}",
                               env=env, cwd=tmp)
        parallel, _ = python(TRAIN, *sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             f"tracking.uri=sqlite:///{tmp / 'par' / 'm.db'}", env=env, cwd=tmp)
        rows.append(("16-run Fashion-MNIST sweep, joblib 2 jobs ÷ sequential",
                     f"{parallel / sequential:.2f}", "≤ 0.6",
                     f"{parallel:.1f} s parallel, {sequential:.1f} s sequential"))
        ratio, together, alone = two_process_ratio(env, tmp)
        rows.append(("reference: two compute-only processes together ÷ one after the other",
                     f"{ratio:.2f}", "0.5 = two free cores",
                     f"{together:.1f} s together, {alone:.1f} s one after the other"))

        imports_mb = peak_rss_mb(["-c", "import digitlab.runner, digitlab.tracking, hydra, "
                                        "sklearn, matplotlib.pyplot"], env, tmp)
        peak_mb = peak_rss_mb([TRAIN, "data=fashion_mnist", "model.hidden=784",
                               "trainer.epochs=1", "trainer.batch_size=128", "optim.lr=0.1",
                               "model.activation=relu",
                               f"tracking.uri=sqlite:///{tmp / 'rss' / 'm.db'}"], env, tmp)
        arrays_mb = (70000 * 784 + 784 * 784 + 784 + 784 * 10 + 10 + 128 * (784 + 784 + 10)) * 4 / 2**20
        rows.append(("peak RSS of a 784-784-10 Fashion-MNIST run", f"{peak_mb:.0f} MB",
                     f"≤ 2 × {arrays_mb:.0f} MB of arrays",
                     f"a process importing the same code: {imports_mb:.0f} MB; "
                     f"peak − imports = {(peak_mb - imports_mb) / arrays_mb:.2f} × the arrays"))

    header = "| measure | here | target | detail |\n|---|---|---|---|"
    table = header + "\n" + "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    print(table)
    RESULTS.write_text(f"# Pipeline costs (`python benchmarks/bench_pipeline.py`, "
                       f"{time.strftime('%Y-%m-%d')})\n\n{table}\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
