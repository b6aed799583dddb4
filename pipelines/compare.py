"""Compare runs as a pandas table: a sweep (default: the latest) or a whole experiment.

    python pipelines/compare.py
    python pipelines/compare.py sweep=<parent run id> out=reports
    python pipelines/compare.py all_runs=true tracking.experiment=digitlab

Prints the table sorted by validation accuracy, writes it as CSV and Markdown with two figures
(accuracy against hidden size per learning rate; learning curves of the best runs), and logs
those files to the sweep's parent run under compare/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.config_store import ConfigStore

from digitlab import cli
from digitlab.config import ExperimentStoreConfig


@dataclass
class CompareConfig:
    # a sweep's parent run id; null = the latest sweep of the experiment
    sweep: Optional[str] = None
    all_runs: bool = False  # true = every run of the experiment, not one sweep
    tracking: ExperimentStoreConfig = field(default_factory=ExperimentStoreConfig)
    out: str = "reports"  # table.csv, table.md and the figures go to <out>/<sweep or experiment>/
    top: int = 3  # learning curves of the best N runs


ConfigStore.instance().store(name="base_compare", node=CompareConfig)


@hydra.main(version_base="1.3", config_path="../conf", config_name="compare")
def main(cfg: CompareConfig) -> None:
    cli.refuse_unknown_keys(cfg)
    cli.check_writable(cfg.out, "out")
    import pandas as pd

    from digitlab import comparison, tracking

    uri = cli.checked_store(cfg.tracking.uri)
    try:
        if cfg.all_runs:
            experiment = tracking.client_for(uri).get_experiment_by_name(cfg.tracking.experiment)
            if experiment is None:
                raise LookupError(f"no experiment {cfg.tracking.experiment!r} in {uri}")
            parent, label = None, cfg.tracking.experiment
            runs = tracking.runs_frame(uri, [experiment.experiment_id])
            runs = runs[runs.get("tags.digitlab.jobs", pd.Series(index=runs.index)).isna()]
        else:
            parent = tracking.find_sweep(uri, cfg.tracking.experiment, cfg.sweep)
            label = parent.info.run_id
            runs = tracking.sweep_runs(uri, parent)
    except LookupError as exc:
        cli.fail(str(exc))
    if runs.empty:
        cli.fail(f"no runs found for {label}; did the sweep start any job?")
    table = comparison.comparison_table(runs)
    out = Path(cfg.out) / label
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(table.to_markdown(index=False, floatfmt=".4f"))
    comparison.accuracy_by_hidden_figure(table).savefig(out / "accuracy_by_hidden.png", dpi=110)
    best = table[table.status == "FINISHED"].head(cfg.top)
    histories = {row.run: {key: tracking.metric_history(uri, row.run_id, key)
                           for key in ("train_accuracy", "val_accuracy")}
                 for row in best.itertuples()}
    comparison.learning_curves_of_best(histories).savefig(out / "learning_curves_best.png",
                                                          dpi=110)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.drop(columns=["run_id"]).to_string(index=False, float_format="{:.4f}".format))
    print(f"\n{len(table)} runs of {label}; table and figures in {out}/")
    if parent is not None:
        tracking.log_files(uri, parent.info.run_id, out, "compare")
        print(f"logged to the sweep's parent run {parent.info.run_id} under compare/")


if __name__ == "__main__":
    cli.run_and_exit(main)
