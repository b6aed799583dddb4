"""The reproduce command's logic; its usage and what it does: pipelines/reproduce.py."""

from __future__ import annotations

import fnmatch
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, List, Optional

from hydra import compose
from hydra.core.config_store import ConfigStore

from digitlab import cli
from digitlab import tags as tag
from digitlab.config import ExperimentStoreConfig, RunConfig

EXPERIMENTS = cli.project_root() / "conf" / "experiment"


@dataclass
class ReproduceConfig:
    only: Any = "*"  # a glob over experiment ids, or a list of globs: only=[fashion-*,rolisz-*]
    seeds: int = 3  # training runs per experiment (seeds 0 … seeds−1)
    n_jobs: int = 2  # parallel jobs (joblib launcher)
    tracking: ExperimentStoreConfig = field(
        default_factory=lambda: ExperimentStoreConfig(experiment="reproduce"))
    mnist_root: Optional[str] = None  # data.root for the MNIST experiments
    kaggle_csv: Optional[str] = None  # data.path for the blog-network experiments
    overrides: List[str] = field(default_factory=list)  # extra overrides for every run
    out: str = "reports/reproduce"


ConfigStore.instance().store(name="base_reproduce", node=ReproduceConfig)


def select(only) -> list[str]:
    ids = sorted(p.stem for p in EXPERIMENTS.glob("*.yaml"))
    patterns = [only] if isinstance(only, str) else list(only)
    chosen = [i for i in ids if any(fnmatch.fnmatch(i, p) for p in patterns)]
    if not chosen:
        cli.fail(f"only={only!r} matches no file in conf/experiment/ (ids: {', '.join(ids)})")
    return chosen


def data_overrides(cfg: ReproduceConfig, data_name: str) -> list[str]:
    if data_name == "mnist" and cfg.mnist_root:
        return [f"data.root={cfg.mnist_root}"]
    if data_name == "kaggle_csv":  # without kaggle_csv= the check below reports the file missing
        return [f"data.path={cfg.kaggle_csv or 'train.csv'}"]
    return []


def compose_experiment(cfg: ReproduceConfig, exp_id: str) -> RunConfig:
    base = compose(config_name="train", overrides=[f"experiment={exp_id}"])
    extra = data_overrides(cfg, base.data.name) + list(cfg.overrides)
    return cli.to_run_config(compose(config_name="train",
                                        overrides=[f"experiment={exp_id}", *extra]))


def missing_data(run_cfg: RunConfig) -> str | None:
    from digitlab.data import DataError, load_dataset

    try:
        load_dataset(run_cfg.data)
    except DataError as exc:
        hint = {"mnist": "mnist_root=/folder", "kaggle_csv": "kaggle_csv=/path/to/train.csv"}
        return f"{exc} (reproduce.py takes {hint.get(run_cfg.data.name, 'data overrides')})"
    return None


def machine() -> str:
    """The machine and the numeric environment a table's runs were trained in."""
    from digitlab.runner import numerics

    env = numerics(RunConfig())
    return (f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()}, "
            f"Python {env[tag.PYTHON]}, NumPy {env[tag.NUMPY]}, {env[tag.BLAS]})")


def command_line(cfg: ReproduceConfig) -> str:
    """The command as typed, with the data folders named by their keys (they lie outside the
    project)."""
    args = [a if not a.startswith(("mnist_root=", "kaggle_csv=")) else
            f"{a.split('=', 1)[0]}=<{a.split('=', 1)[0].replace('_', ' ')}>" for a in sys.argv[1:]]
    return " ".join(["python pipelines/reproduce.py", *args])


def markdown_table(table) -> str:
    """The table as Markdown, a `|` inside a header or cell escaped so it stays one cell."""
    escaped = table.rename(columns=lambda c: c.replace("|", "\\|"))
    return escaped.map(lambda v: str(v).replace("|", "\\|")).to_markdown(index=False)


def launch(cfg: ReproduceConfig, ids: list[str], extra: list[str], uri: str, parent: str,
           sweep_dir: Path, seeds: int) -> int:
    command = [sys.executable, str(cli.project_root() / "pipelines" / "train.py"), "-m",
               f"experiment={','.join(ids)}", f"seed={','.join(map(str, range(seeds)))}",
               "hydra/launcher=joblib", f"hydra.launcher.n_jobs={cfg.n_jobs}",
               f"hydra.sweep.dir={sweep_dir}", f"tracking.uri={uri}",
               f"tracking.experiment={cfg.tracking.experiment}", f"tracking.parent_run_id={parent}",
               "tracking.log_model=false", "tracking.skip_finished=false", *extra, *cfg.overrides]
    return subprocess.run(command).returncode


def speed_row(row: dict, published, trained: list, figures: dict, exp_id: str) -> dict:
    """A chapter-5 "speed of learning" row: ‖∂C/∂bˡ‖ per hidden layer before training."""
    from digitlab.comparison import speed_curve_figure
    from digitlab.reproduction import format_speed, load_speed_curve, reproduce_speed

    curve = load_speed_curve(published)
    rep = reproduce_speed(published, trained, curve)
    bands = ", ".join(f"{low:.3g}–{high:.3g}" for low, high in rep.bands)
    inside = " / ".join("yes" if low <= value <= high else "no"
                        for value, (low, high) in zip(published.speed, rep.intervals))
    if rep.means and trained:
        figures[exp_id] = speed_curve_figure(exp_id, curve, trained, len(published.speed))
    return {**row, "published": f"{format_speed(published.speed)} ‖∂C/∂b‖ before training",
            "reproduced": (f"{format_speed(rep.means)} (geometric mean of {rep.runs}; 95 % "
                           f"band {bands})"
                           if rep.means else "—"),
            "95 % CI": " / ".join(f"{low:.3g}–{high:.3g}" for low, high in rep.intervals) or "—",
            "published in CI": inside or "—", "Δ": "—", "verdict": rep.verdict, "curve max|Δ|": "",
            "curve mean|Δ|": "" if rep.curve_gap is None else f"{rep.curve_gap:.2f} decades"}


def run(cfg: ReproduceConfig) -> None:
    """The command's work, from its composed config."""
    _check(cfg)
    from digitlab.tracking.queries import log_files, log_table, runs_frame
    from digitlab.tracking.runs import end_run, start_parent_run
    from digitlab.tracking.store import resolve_uri

    ids = select(cfg.only)
    print(f"reproducing {len(ids)} row(s) ({', '.join(ids)}), {cfg.seeds} seed(s) each, "
          f"{cfg.n_jobs} at a time", flush=True)  # composing and the store take seconds
    configs = {exp_id: compose_experiment(cfg, exp_id) for exp_id in ids}
    missing = {i: reason for i, c in configs.items() if (reason := missing_data(c))}
    if len(missing) == len(ids):  # nothing to train: no store, no parent run, no table
        cli.fail(f"no row can run, its data is missing: {next(iter(missing.values()))}")
    uri = resolve_uri(cfg.tracking.uri, cli.project_root())
    experiment_id = cli.prepare_store(uri, cfg.tracking.experiment)
    only = cfg.only if isinstance(cfg.only, str) else ",".join(cfg.only)
    started = time.monotonic()
    parent = start_parent_run(uri, experiment_id, f"reproduce {only}",
                              {tag.ONLY: only, tag.SEEDS: str(cfg.seeds),
                               **cli.git_state()})
    out = Path(cfg.out)
    failed_sweeps = 0
    try:
        for n, ((extra, seeds), group) in enumerate(
                _sweeps(cfg, {i: c for i, c in configs.items() if i not in missing}).items()):
            # the sweeps' Hydra folders beside train.py's, not among the reports
            failed_sweeps += launch(cfg, group, list(extra), uri, parent,
                                    Path("outputs/reproduce").resolve() / f"{parent}-{n}",
                                    seeds) != 0
        print("reading the runs back for the table …", flush=True)
        runs = runs_frame(uri, [experiment_id], parent)
        figures: dict = {}
        rows = [_row(uri, exp_id, configs[exp_id], missing.get(exp_id), runs, figures)
                for exp_id in ids]
        table, written = _write_table(cfg, rows, figures, out, time.monotonic() - started,
                                      complete=not missing and not failed_sweeps)
        log_files(uri, parent, out, "reproduce")
        log_table(uri, parent, table, "reproduce/reproduce_table.json")
        status = "FAILED" if failed_sweeps else "FINISHED"
    except BaseException:
        status = "KILLED"
        raise
    finally:
        end_run(uri, parent, status)
    print(f"\nparent run {parent} in experiment {cfg.tracking.experiment!r}; "
          f"table in {out}/{written}")
    if missing or failed_sweeps:  # a table with rows that could not run is not a result
        sys.exit(1)


def _check(cfg: ReproduceConfig) -> None:
    cli.refuse_unknown_keys(cfg)
    if cfg.seeds < 1:
        cli.fail(f"seeds={cfg.seeds}: give the number of training runs per experiment, an "
                 "integer ≥ 1 (seeds 0 … seeds−1 are trained)")
    if cfg.n_jobs == 0:
        cli.fail("n_jobs=0: give the number of parallel jobs, an integer ≥ 1, or a negative one "
                 "as joblib counts (-1 every core, -2 all but one)")
    cli.check_writable(cfg.out, "out")


def _sweeps(cfg: ReproduceConfig, configs: dict) -> dict[tuple[tuple[str, ...], int], list[str]]:
    """The experiments by the sweep that trains them: one per dataset (its data.root / path)
    and seed count."""
    groups: dict[tuple[tuple[str, ...], int], list[str]] = {}
    for exp_id, run_cfg in configs.items():
        seeds = max(cfg.seeds, run_cfg.published.min_seeds)
        groups.setdefault((tuple(data_overrides(cfg, run_cfg.data.name)), seeds),
                          []).append(exp_id)
    return groups


def _row(uri: str, exp_id: str, run_cfg: RunConfig, missing: str | None, runs,
         figures: dict) -> dict:
    """The table's row of one experiment: published against reproduced, with its verdict; its
    curve figure added to `figures`."""
    from digitlab.comparison import published_curve_figure
    from digitlab.reproduction import (
        TrainingRun,
        format_interval,
        format_value,
        load_curve,
        published_inside,
        reproduce,
    )
    from digitlab.tracking.queries import metric_history

    published = run_cfg.published
    row = {"id": exp_id, "dataset": run_cfg.data.name, "recipe": published.recipe,
           "published": "—" if published.value is None else
           f"{published.value:g} % {published.split} {published.metric}"}
    if missing:
        return {**row, "reproduced": "—", "95 % CI": "—", "published in CI": "—", "Δ": "—",
                "verdict": f"data missing: {missing}"}
    mine = runs[(runs.get("params.experiment_id") == exp_id)
                & (runs.status == "FINISHED")] if len(runs) else runs
    series = (("train_accuracy", "val_accuracy", "epoch_test_accuracy") if not published.speed
              else [f"layer{layer}.grad_b_norm" for layer in range(1, len(published.speed) + 1)])
    trained = [TrainingRun(int(r["params.seed"]),
                           {k: metric_history(uri, r.run_id, k) for k in series},
                           {"test_accuracy": r.get("metrics.test_accuracy")})
               for _, r in mine.iterrows()]
    if published.speed:
        return speed_row(row, published, trained, figures, exp_id)
    curve = load_curve(published)
    rep = reproduce(published, trained, curve)
    if curve is not None and trained:
        figures[exp_id] = published_curve_figure(exp_id, curve, trained, published)
    return {**row, "reproduced": format_value(rep), "95 % CI": format_interval(rep.interval),
            "published in CI": published_inside(published, rep),
            "Δ": "—" if rep.delta is None else f"{rep.delta:+.2f}", "verdict": rep.verdict,
            "curve max|Δ|": "" if rep.curve_max is None else f"{rep.curve_max:.2f}",
            "curve mean|Δ|": "" if rep.curve_mean is None else f"{rep.curve_mean:.2f}"}


def _write_table(cfg: ReproduceConfig, rows: list[dict], figures: dict, out: Path,
                 seconds: float, complete: bool):
    """reproduce.md and the curve figures written whole into `out`, the table printed. A table
    with rows that could not run (`complete` false) never replaces a reproduce.md: it is written
    beside it, as reproduce.partial.md."""
    import pandas as pd

    table = pd.DataFrame(rows).fillna("")
    out.mkdir(parents=True, exist_ok=True)
    markdown = (f"Reproduced {date.today()} on {machine()} in {seconds:.0f} s with "
                f"`{command_line(cfg)}`\n\n" + markdown_table(table))
    written = "reproduce.md"
    if not complete and (out / written).exists():
        written = "reproduce.partial.md"
        print(f"some rows could not run: {out}/reproduce.md is kept as it was, this table is "
              f"{out}/reproduce.partial.md")
    cli.write_whole(out / written, lambda p: p.write_text(markdown + "\n"), "out")
    for exp_id, fig in figures.items():
        cli.write_whole(out / f"curve-{exp_id}.png",
                        lambda p, fig=fig: fig.savefig(p, dpi=100, format="png"), "out")
    with pd.option_context("display.width", 250, "display.max_colwidth", 70):
        print(table.to_string(index=False))
    return table, written
