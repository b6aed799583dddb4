"""What each command costs, beside the script a researcher writes by hand with Hydra and MLflow
in the shape of their tutorials (benchmarks/typical.py: a classification report, a confusion
matrix figure, the weights and a pyfunc model logged); both run in one benchmark run,
alternating, so the machine's load falls on both alike:

    python benchmarks/bench_commands.py [--repeats 5] [--no-sweeps]

Rounds of: the typical script (1 epoch into an existing store), a one-run digits command (1 epoch,
every artifact of the contract, into an existing store), the same with tracking=off, the same
command again (skipped: already FINISHED), status.py, compare.py and register.py. Every command
is a fresh process that leaves none behind. Then `make run`'s 12-run sweep (into the existing
store, a new experiment each time) beside the typical script's plain Hydra multirun of the same
grid; a 240-run digits sweep (1 epoch each, once), whose per-run
cost must stay flat as the store grows (the last 24 runs against the first 24, from the runs'
start times) with the store's and the artifacts' size per run; and, where dataset-fashion-mnist
is installed, 16 five-epoch 784-100-10 Fashion-MNIST jobs on 2 joblib workers against the same
jobs run sequentially. Every figure is a median of --repeats fresh processes; the ratios are what
the targets are written in. Beside the sweep, its floor: the typical script plus the seconds its
runs spent in their epoch loops (training and the per-epoch writes), read from the store; beside
the joblib sweep, the CPU seconds of the sequential one over the machine's cores, and the joblib
sweep's own (how near it is to keeping every core busy). Written to commands_results.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
TYPICAL = Path(__file__).with_name("typical.py")
REFERENCE, SWEEP_REFERENCE = "typical script", "typical script's 12-job multirun"
RESULTS = Path(__file__).with_name("commands_results.md")
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
# make run's sweep (Makefile), kept in step with it by tests/test_benchmarks.py
MAKE_RUN_SWEEP = ["-m", "model.hidden=16,32,64", "optim.lr=0.1,0.5", "seed=0,1",
                  "trainer.epochs=20"]
# the same grid as the typical script's plain Hydra multirun (basic launcher)
TYPICAL_SWEEP = ["-m", "hidden=16,32,64", "lr=0.1,0.5", "seed=0,1", "epochs=20"]
FASHION_SWEEP = ["-m", "data=fashion_mnist", "model.hidden=100", "model.activation=relu",
                 "optim.lr=0.1", "trainer.batch_size=128", "trainer.epochs=5",
                 "seed=" + ",".join(map(str, range(16)))]


def timed(args: list[str], env: dict, cwd: Path, cpu: list[float] | None = None) -> float:
    """Wall seconds of one fresh process (its CPU seconds appended to `cpu`: its own and those
    of the children it waited for); stops the benchmark on a non-zero exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, args[:4]))}… exited {done.returncode}:\n"
                 f"{done.stderr[-3000:]}{done.stdout[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-sweeps", action="store_true", help="only the one-run commands")
    options = parser.parse_args()
    py = sys.executable
    times: dict[str, list[float]] = {}
    epoch_loops: list[float] = []
    sequential_cpu: list[float] = []
    joblib_cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="digitlab-commands-") as folder:
        tmp = Path(folder)
        env = {**os.environ, "DIGITLAB_CACHE": str(tmp / "cache"), "PYTHONWARNINGS": "ignore"}
        env.pop("MLFLOW_TRACKING_URI", None)
        uri = f"sqlite:///{tmp / 'store' / 'mlflow.db'}"
        store = [f"tracking.uri={uri}"]
        hand_store = f"uri=sqlite:///{tmp / 'typical' / 'mlflow.db'}"

        def train(*args: str) -> list[str]:
            return [py, str(PIPELINES / "train.py"), *args]

        # the stores exist and hold a sweep before anything is timed, as in a working project
        timed([py, str(TYPICAL), hand_store, f"hydra.run.dir={tmp / 'hand'}"], env, tmp)
        timed(train(*MAKE_RUN_SWEEP[:2], "trainer.epochs=2", *store), env, tmp)
        timed(train("trainer.epochs=1", "seed=99", "tracking=off"), env, tmp)  # its data cache
        commands = {
            REFERENCE: lambda i: [py, str(TYPICAL), hand_store, f"seed={i}",
                                  f"hydra.run.dir={tmp / 'hand'}"],
            "one run": lambda i: train("trainer.epochs=1", f"seed={100 + i}", *store),
            "one run, tracking=off": lambda i: train("trainer.epochs=1", f"seed={i}",
                                                     "tracking=off"),
            "one run, skipped": lambda i: train("trainer.epochs=1", f"seed={100 + i}", *store),
            "status.py": lambda i: [py, str(PIPELINES / "status.py"), *store],
            "compare.py": lambda i: [py, str(PIPELINES / "compare.py"), *store,
                                     f"out={tmp / 'reports'}"],
            "register.py": lambda i: [py, str(PIPELINES / "register.py"), *store],
            STORE_FLOOR: lambda i: [py, "-c", STORE_FLOOR_CODE, uri],
            REPORTS_FLOOR: lambda i: [py, "-c", REPORTS_FLOOR_CODE],
        }
        for i in range(options.repeats):
            for name, command in commands.items():
                times.setdefault(name, []).append(
                    timed(command(i), env, tmp))
        parts = breakdown(train("trainer.epochs=1", "seed=999", *store), env, tmp)
        if not options.no_sweeps:
            for i in range(options.repeats):
                times.setdefault(SWEEP_REFERENCE, []).append(timed(
                    [py, str(TYPICAL), *TYPICAL_SWEEP, hand_store, f"experiment=multirun-{i}",
                     f"hydra.sweep.dir={tmp / 'multirun'}"], env, tmp))
                times.setdefault("make run's 12-run sweep", []).append(timed(
                    train(*MAKE_RUN_SWEEP, *store, f"tracking.experiment=sweep-{i}"), env, tmp))
                epoch_loops.append(_train_seconds(uri, f"sweep-{i}"))
            scale = _scale_sweep(train, tmp, env)
            if FASHION.exists():
                timed(train("data=fashion_mnist", "trainer.epochs=1", "tracking=off"), env,
                      tmp)  # the parsed-array cache is made once, before the timing
                for i in range(options.repeats):
                    experiment = [*store, f"tracking.experiment=fashion-{i}",
                                  "tracking.skip_finished=false"]
                    times.setdefault("16 Fashion jobs, sequential", []).append(
                        timed(train(*FASHION_SWEEP, *experiment), env, tmp, sequential_cpu))
                    times.setdefault("16 Fashion jobs, joblib n_jobs=2", []).append(timed(
                        train(*FASHION_SWEEP, *experiment, "hydra/launcher=joblib",
                              "hydra.launcher.n_jobs=2"), env, tmp, joblib_cpu))
    if epoch_loops:
        hand = statistics.median(times[REFERENCE])
        times[SWEEP_FLOOR] = [hand + seconds for seconds in epoch_loops]
    if sequential_cpu:
        times[JOBLIB_FLOOR] = [seconds / CORES for seconds in sequential_cpu]
        times[JOBLIB_OWN_FLOOR] = [seconds / CORES for seconds in joblib_cpu]
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(table(medians, times, options.repeats, None if options.no_sweeps else scale, parts))


SCALE_RUNS = 240  # one config each: seed × optim.lr × model.hidden, 1 epoch
# the first key varies slowest: each window of 24 runs holds every hidden size and rate once (a
# run of 32 hidden units costs more than one of 8, whatever the store's size)
SCALE_SWEEP = ["-m", "seed=" + ",".join(map(str, range(10))),
               "optim.lr=0.1,0.2,0.3,0.4,0.5,0.6", "model.hidden=8,16,24,32", "trainer.epochs=1"]
SCALE_WINDOW = 24  # the runs compared: the first and the last this many


def _scale_sweep(train, tmp: Path, env: dict) -> dict:
    """The 240-run sweep into a store of its own: the per-run cost of its first and last
    SCALE_WINDOW runs (the gaps between consecutive runs' start times: each run's whole cost,
    its bookkeeping included) and the store's and the artifacts' bytes per run."""
    store = tmp / "scale"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    seconds = timed(train(*SCALE_SWEEP, f"tracking.uri={uri}", "tracking.experiment=scale"),
                    env, tmp)
    starts = sorted(r.info.start_time for r in _runs(uri, "scale")
                    if "mlflow.parentRunId" in r.data.tags)
    gaps = [(b - a) / 1000 for a, b in zip(starts, starts[1:])]
    first, last = gaps[:SCALE_WINDOW], gaps[-SCALE_WINDOW:]
    artifacts = sum(f.stat().st_size for f in (store / "artifacts").rglob("*") if f.is_file())
    return {"runs": len(starts), "seconds": seconds, "first": statistics.median(first),
            "last": statistics.median(last),
            "store_kb": (store / "mlflow.db").stat().st_size / 1024 / len(starts),
            "artifacts_kb": artifacts / 1024 / len(starts)}


def _runs(uri: str, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def _train_seconds(uri: str, experiment: str) -> float:
    """Σ train_seconds of the runs of `experiment`: their epoch loops, per-epoch writes included."""
    return sum(r.data.metrics.get("train_seconds", 0.0) for r in _runs(uri, experiment))


SWEEP_FLOOR = "typical script + the sweep's epoch loops"
CORES = os.cpu_count() or 1
# no schedule of the same jobs on CORES cores ends sooner than their CPU seconds over CORES
JOBLIB_FLOOR = f"the sequential jobs' CPU seconds / {CORES} cores"
JOBLIB_OWN_FLOOR = f"the joblib jobs' own CPU seconds / {CORES} cores"
# the least any tracked command does through the public APIs: import NumPy, Hydra and MLflow and
# open the SQLite store with MLflow's client (which checks its schema); and the least a run that
# writes a classification report and matplotlib figures imports besides
STORE_FLOOR = "imports of NumPy, Hydra, MLflow + the store opened"
STORE_FLOOR_CODE = ("import sys, numpy, hydra, mlflow\n"
                    "mlflow.MlflowClient(sys.argv[1]).search_experiments()")
REPORTS_FLOOR = "imports of scikit-learn's metrics + matplotlib's Figure"
REPORTS_FLOOR_CODE = "import sklearn.metrics, matplotlib.figure"
FLOORS = [  # (what, reference, the command it bounds from below)
    (STORE_FLOOR, REFERENCE, "one run, and every command that opens the store"),
    (REPORTS_FLOOR, REFERENCE, "a run that writes its reports"),
    (SWEEP_FLOOR, SWEEP_REFERENCE, "make run's 12-run sweep"),
    (JOBLIB_FLOOR, "16 Fashion jobs, sequential", "16 Fashion jobs, joblib n_jobs=2"),
    (JOBLIB_OWN_FLOOR, "16 Fashion jobs, sequential", "16 Fashion jobs, joblib n_jobs=2"),
]
TARGETS = [  # (command, reference, target ratio)
    ("one run", REFERENCE, 0.8),
    ("one run, tracking=off", REFERENCE, 0.4),
    ("one run, skipped", REFERENCE, 0.4),
    ("status.py", REFERENCE, 0.5),
    ("compare.py", REFERENCE, 0.5),
    ("register.py", REFERENCE, 0.5),
    ("make run's 12-run sweep", SWEEP_REFERENCE, 0.6),
    ("16 Fashion jobs, joblib n_jobs=2", "16 Fashion jobs, sequential", None),  # shown
]
SCALE_TARGET = 1.2  # the last runs' per-run cost over the first runs'


def scale_table(scale: dict) -> str:
    ratio = scale["last"] / scale["first"]
    return (f"| {scale['runs']}-run sweep, 1 epoch each | {scale['seconds']:.1f} s in all | "
            f"per run: first {SCALE_WINDOW} {scale['first']:.3f} s, last {SCALE_WINDOW} "
            f"{scale['last']:.3f} s: {ratio:.2f} × | ≤ {SCALE_TARGET:g} | "
            f"{'yes' if ratio <= SCALE_TARGET else 'no'} | store {scale['store_kb']:.0f} KB "
            f"and artifacts {scale['artifacts_kb']:.0f} KB per run |")


# where one tracked run's seconds go: (part, the functions whose cumulative time it is); the
# imports are counted wherever they happen, so a part includes the imports it triggers
PARTS = [
    ("imports (all, wherever they happen)", [("importlib._bootstrap", "_find_and_load")]),
    ("config and store checks", [("digitlab/cli/preflight.py", "preflight"),
                                 ("digitlab/cli/preflight.py", "prepare_store")]),
    ("data and split", [("digitlab/data/sources.py", "load_dataset"),
                        ("digitlab/runner.py", "split_of")]),
    ("training (the epochs, their metrics logged)", [("digitlab/runner.py", "_train_epochs")]),
    ("reports (classification report, figures)", [("digitlab/runner.py", "_write_reports")]),
    ("model (pyfunc, logged)", [("digitlab/tracking/runs.py", "log_model")]),
    ("other logging (run, params, tags, datasets, artifacts, metrics, end)", [
        ("digitlab/tracking/runs.py", name) for name in ("_created", "set_tags", "log_datasets",
                                                "log_artifacts", "log_metrics", "write_epochs",
                                                "_end_run", "finished_run")]),
]


def breakdown(command: list[str], env: dict, cwd: Path) -> list[tuple[str, float]]:
    """One tracked run under cProfile: its whole time and each part's (PARTS)."""
    import pstats

    profile = cwd / "run.prof"
    timed([command[0], "-m", "cProfile", "-o", str(profile), *command[1:]], env, cwd)
    stats = pstats.Stats(str(profile)).stats
    parts = [("the whole process, profiled", sum(tt for _, _, tt, _, _ in stats.values()))]
    for part, functions in PARTS:
        parts.append((part, sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                                if any(name == function and where in file
                                       for where, function in functions))))
    return parts


def table(medians: dict[str, float], times: dict[str, list[float]], repeats: int,
          scale: dict | None = None, parts: list[tuple[str, float]] | None = None) -> str:
    lines = ["| command | median s | × reference | target | met | all runs, s |",
             "|---|---|---|---|---|---|",
             f"| {REFERENCE} (the reference) | {medians[REFERENCE]:.2f} | 1.00 | — | — "
             f"| {_all(times[REFERENCE])} |"]
    if SWEEP_REFERENCE in medians:
        lines.append(f"| {SWEEP_REFERENCE} | {medians[SWEEP_REFERENCE]:.2f} | "
                     f"{medians[SWEEP_REFERENCE] / medians[REFERENCE]:.2f} | — | — | "
                     f"{_all(times[SWEEP_REFERENCE])} |")
    for name, reference, target in TARGETS:
        if name not in medians:
            continue
        ratio = medians[name] / medians[reference]
        aim, met = ("—", "—") if target is None else (f"≤ {target:g}", "yes" if ratio <= target
                                                      else "no")
        lines.append(f"| {name} | {medians[name]:.2f} | {ratio:.2f}{_of(reference)} | {aim} | "
                     f"{met} | {_all(times[name])} |")
    for name, reference, bounded in FLOORS:
        if name not in medians:
            continue
        lines.append(f"| {name} (a floor of {bounded}) | {medians[name]:.2f} | "
                     f"{medians[name] / medians[reference]:.2f}{_of(reference)} | — | — | "
                     f"{_all(times[name])} |")
    if scale:
        lines.append(scale_table(scale))
    if parts:
        lines += ["", "One tracked run, 1 epoch, under cProfile (seconds; its overhead inflates "
                  "them alike):", "", "| part | s | share |", "|---|---|---|"]
        lines += [f"| {part} | {seconds:.2f} | {seconds / parts[0][1]:.0%} |"
                  for part, seconds in parts]
    text = "\n".join(lines)
    RESULTS.write_text(f"# Command costs (`python benchmarks/bench_commands.py --repeats "
                       f"{repeats}`, {time.strftime('%Y-%m-%d')})\n\n{text}\n")
    return text + f"\n\nwritten to {RESULTS}"


def _of(reference: str) -> str:
    return "" if reference == REFERENCE else f" of {reference}"


def _all(seconds: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in seconds)


if __name__ == "__main__":
    main()
