"""What a command costs as the store grows: one SQLite store filled to 50, then 500, then 5,000
runs, and at each size every command a user runs on it, timed:

    python benchmarks/bench_scale.py [--sizes 50,500,1000,5000] [--repeats 3]

The store's runs are one real 1-epoch digits run (train.py, every param, metric, tag and
artifact of the contract) written again through MLflow's public API (`create_run`, `log_batch`,
`log_artifacts`, `set_terminated`) under other hidden sizes and seeds, in sweeps of 12 under a
parent run as a sweep leaves them; real training for each of 5,000 runs would take an hour on 2
cores and measure the training, not the store. Before each size is timed, a real 12-run sweep
(train.py -m, 1 epoch, with models) is the store's latest. Then, each a fresh process, medians
of --repeats: status.py, compare.py of the latest sweep, compare.py all_runs=true, register.py,
the latest sweep's first config again (skipped: already FINISHED) and a new run (a new seed
each time), with the process's peak memory. Ratios are against the smallest store. At 1,000
runs, the HTML report of every run (`compare.py all_runs=true format=html`): its size, and the
seconds headless Chromium takes to open it with every figure drawn. Written to
scale_results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
RESULTS = Path(__file__).with_name("scale_results.md")
EXPERIMENT = "scale"
LATEST = ["-m", "model.hidden=16,32,64", "optim.lr=0.1,0.5", "seed=0,1"]
HIDDEN = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]


def timed(args: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of one fresh process; stops on a non-zero exit."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(map(str, args[:4]))}… exited {done.returncode}:\n"
                 f"{done.stderr[-3000:]}{done.stdout[-2000:]}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 1024


def template(uri: str, cwd: Path, env: dict, folder: Path):
    """One real 1-epoch run: its params, metric histories, tags and artifacts (downloaded)."""
    from mlflow import MlflowClient

    timed([sys.executable, str(PIPELINES / "train.py"), "trainer.epochs=1", "seed=1000",
           f"tracking.uri={uri}", f"tracking.experiment={EXPERIMENT}-template"], cwd, env)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(f"{EXPERIMENT}-template").experiment_id
    run = client.search_runs([experiment])[0]
    histories = {key: client.get_metric_history(run.info.run_id, key)
                 for key in run.data.metrics}
    client.download_artifacts(run.info.run_id, "", str(folder))
    return run, histories


def add_runs(uri: str, count: int, start: int, run, histories: dict, artifacts: Path) -> None:
    """`count` runs like `run` (another hidden size and seed each, a unique identity), 12 to a
    parent run, through MLflow's public API."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(uri)
    experiment = (client.get_experiment_by_name(EXPERIMENT)
                  or client.get_experiment(client.create_experiment(EXPERIMENT))).experiment_id
    for first in range(start, start + count, 12):
        n = min(12, start + count - first)
        parent = client.create_run(experiment, run_name=f"copied sweep {first}",
                                   tags={"digitlab.jobs": str(n)}).info.run_id
        for i in range(first, first + n):
            hidden, seed = HIDDEN[i % len(HIDDEN)], 100 + i
            params = {**run.data.params, "model.hidden": str(hidden), "seed": str(seed)}
            tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
            tags.update({"mlflow.parentRunId": parent, "digitlab.config_hash": f"copy-{i}"})
            child = client.create_run(experiment, run_name=f"hidden={hidden} seed={seed}",
                                      tags=tags).info.run_id
            metrics = [Metric(key, point.value, point.timestamp, point.step)
                       for key, points in histories.items() for point in points]
            client.log_batch(child, metrics=metrics,
                             params=[Param(k, v) for k, v in params.items()])
            client.log_artifacts(child, str(artifacts))
            client.set_terminated(child)
        client.set_terminated(parent)


def measure(uri: str, cwd: Path, env: dict, repeats: int, size: int) -> dict[str, tuple]:
    train = [sys.executable, str(PIPELINES / "train.py")]
    store = [f"tracking.uri={uri}", f"tracking.experiment={EXPERIMENT}"]
    timed([*train, *LATEST, "trainer.epochs=1", *store], cwd, env)  # the latest sweep, real
    commands = {
        "status.py": [sys.executable, str(PIPELINES / "status.py"), f"tracking.uri={uri}"],
        "compare.py (latest sweep, 12 runs)": [sys.executable, str(PIPELINES / "compare.py"),
                                               *store, "out=reports"],
        "compare.py all_runs=true": [sys.executable, str(PIPELINES / "compare.py"), *store,
                                     "all_runs=true", "out=reports"],
        "register.py": [sys.executable, str(PIPELINES / "register.py"), *store, "force=true"],
        "a run already FINISHED (skipped)": [*train, "model.hidden=16", "optim.lr=0.1",
                                             "seed=0", "trainer.epochs=1", *store],
    }
    results = {}
    for name, args in commands.items():
        runs = [timed(args, cwd, env) for _ in range(repeats)]
        results[name] = (statistics.median(s for s, _ in runs), max(m for _, m in runs))
    new = [timed([*train, f"seed={10_000 + size * 10 + k}", "trainer.epochs=1", *store], cwd,
                 env) for k in range(repeats)]
    results["a new run"] = (statistics.median(s for s, _ in new), max(m for _, m in new))
    return results


def html_report(uri: str, cwd: Path, env: dict) -> str:
    """The HTML report of every run of the store's experiment: its size, the seconds it took,
    and the seconds Chromium takes to load it and draw every figure."""
    from playwright.sync_api import sync_playwright

    seconds, _ = timed([sys.executable, str(PIPELINES / "compare.py"), f"tracking.uri={uri}",
                        f"tracking.experiment={EXPERIMENT}", "all_runs=true", "format=html",
                        "out=html"], cwd, env)
    page = cwd / "html" / EXPERIMENT / "report.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        tab.goto(page.as_uri(), wait_until="load")
        tab.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')]"
                              ".every(figure => figure._fullLayout)", timeout=60_000)
        opened = time.perf_counter() - start
        figures = tab.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        browser.close()
    return (f"The HTML report of the {EXPERIMENT} experiment's runs at 1,000 copied runs "
            f"(`compare.py all_runs=true format=html`): {page.stat().st_size / 1e6:.1f} MB, "
            f"written in {seconds:.1f} s; headless Chromium loads it and draws its {figures} "
            f"figures in {opened:.2f} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,500,1000,5000")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    by_size = {}
    with tempfile.TemporaryDirectory(prefix="digitlab-scale-") as tmp:
        cwd = Path(tmp)
        uri = f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}"
        run, histories = template(uri, cwd, env, cwd / "template")
        have = 0
        for size in sizes:
            started = time.perf_counter()
            add_runs(uri, size - have, have, run, histories, cwd / "template")
            print(f"store of {size} copied runs built in {time.perf_counter() - started:.0f} s",
                  flush=True)
            have = size
            by_size[size] = measure(uri, cwd, env, options.repeats, size)
            for name, (seconds, mb) in by_size[size].items():
                print(f"  {size:>5} runs  {name:<36} {seconds:6.2f} s  {mb:5.0f} MB", flush=True)
            if size == 1000:
                page = html_report(uri, cwd, env)
                print(f"  {page}", flush=True)
    text = report(by_size, options) + (f"\n{page}\n" if 1000 in by_size else "")
    RESULTS.write_text(text)
    print(text)


def report(by_size: dict, options) -> str:
    sizes = sorted(by_size)
    first = sizes[0]
    head = ("| command | " + " | ".join(f"{s:,} runs" for s in sizes)
            + f" | {sizes[-1]:,} ÷ {first:,} | peak memory |")
    lines = [head, "|---" * (len(sizes) + 3) + "|"]
    for name in by_size[first]:
        seconds = [by_size[s][name][0] for s in sizes]
        peak = max(by_size[s][name][1] for s in sizes)
        lines.append(f"| {name} | " + " | ".join(f"{s:.2f} s" for s in seconds)
                     + f" | {seconds[-1] / seconds[0]:.2f}× | {peak:.0f} MB |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return ("# What a command costs as the store grows\n\n"
            f"`python benchmarks/bench_scale.py --sizes {options.sizes} --repeats "
            f"{options.repeats}` on {machine}, {time.strftime('%Y-%m-%d')}: medians of "
            f"{options.repeats} fresh processes; the store's runs beside the latest real sweep are "
            "copies of a real run written through MLflow's API (the script's docstring says "
            "why).\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
