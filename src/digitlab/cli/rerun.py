"""The rerun command's logic; its usage and what it does: pipelines/rerun.py."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from hydra.core.config_store import ConfigStore

from digitlab import cli
from digitlab import tags as tag
from digitlab.cli import project
from digitlab.config import StoreConfig


@dataclass
class RerunConfig:
    run_id: str = "???"  # the run to re-run (required)
    tracking: StoreConfig = field(default_factory=StoreConfig)


ConfigStore.instance().store(name="base_rerun", node=RerunConfig)
PER_EPOCH = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
             "epoch_test_loss", "epoch_test_accuracy")


def _refuse_unless_trained(run_id: str, logged) -> None:
    """One line and exit 2 for a run a rerun cannot compare against: a sweep's, search's or
    reproduction's parent, or a run that did not finish (it logged no final weights)."""
    from digitlab.tracking.queries import PARENT_KINDS

    tags = logged.data.tags
    parent = (any(key in tags for key in PARENT_KINDS)
              and tag.PARENT not in tags)
    if parent:
        cli.fail(f"run_id={run_id}: {logged.info.run_name!r} is a parent run (a sweep, search "
                 "or reproduction), which trained nothing itself; give the id of one of its "
                 "child runs (compare.py lists them).")
    if logged.info.status != "FINISHED":
        again = tags.get(tag.OVERRIDES, "")
        cli.fail(f"run_id={run_id}: the run is {logged.info.status}, so it has no final weights "
                 f"to compare against; train its config again with "
                 f"{project.pipeline('train.py')} {again}".rstrip() + ".")


def run(cfg: RerunConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    from digitlab import runner
    from digitlab.reproduction import rerun_verdict
    from digitlab.tracking.queries import get_run, metric_history
    from digitlab.tracking.runs import MlflowTracker

    uri = cli.checked_store(cfg.tracking.uri)
    try:
        logged = get_run(uri, cfg.run_id)
    except Exception as exc:  # MlflowException: no such run
        cli.fail(f"run_id={cfg.run_id}: no such run in {uri} ({type(exc).__name__}); "
                 "copy the id from the MLflow UI or the sweep summary.")
    _refuse_unless_trained(cfg.run_id, logged)
    config, weights, predictions = _logged_files(uri, cfg.run_id)
    run_cfg, code = _same_data_and_code(config, logged.data.tags)
    tracker = MlflowTracker(uri, logged.info.experiment_id)
    result = runner.run(run_cfg, tracker, f"rerun of {logged.info.run_name}",
                        {tag.RERUN_OF: cfg.run_id, **code})
    # every per-epoch metric the run logged, its per-layer ones too (their step 0 aside)
    keys = [*PER_EPOCH, *(k for k in logged.data.metrics if k.startswith("layer"))]
    history = {k: metric_history(uri, cfg.run_id, k, first_step=1) for k in keys}
    final = {k: v for k, v in logged.data.metrics.items()
             if k in result.metrics or k in ("test_loss", "test_accuracy")}
    verdict = rerun_verdict({k: v for k, v in history.items() if v}, final, weights,
                            result.history, result.metrics,
                            {"final": result.final_state, "best": result.best_state},
                            _both(predictions, _predictions(uri, result.run_id)))
    print(f"re-ran {cfg.run_id} as {result.run_id}")
    print(verdict.line)
    sys.exit(verdict.exit_code)


def _predictions(uri: str, run_id: str | None):
    """A run's predictions on its test split (report/test_predictions.npz), None without one."""
    from digitlab import reporting
    from digitlab.tracking.queries import artifact_files

    data = artifact_files(uri, run_id, "report").get(reporting.PREDICTIONS_FILE) if run_id else None
    return reporting.read_predictions(data)["predicted"] if data else None


def _both(logged, rerun):
    return None if logged is None or rerun is None else (logged, rerun)


def _logged_files(uri: str, run_id: str) -> tuple[dict, dict, np.ndarray | None]:
    """The run's logged config.yaml, its final and best weights, and its predictions on the test
    split where it kept them; or one line and exit 2."""
    from digitlab.tracking.queries import download

    with tempfile.TemporaryDirectory(prefix="digitlab-rerun-") as tmp:
        try:
            config = yaml.safe_load(download(uri, run_id, "config.yaml", Path(tmp)).read_text())
            weights = {}
            for name in ("final", "best"):
                with np.load(download(uri, run_id, f"weights/{name}.npz", Path(tmp)),
                             allow_pickle=False) as arrays:
                    weights[name] = dict(arrays)
            predictions = _predictions(uri, run_id)
        except Exception as exc:  # MlflowException / OSError: an artifact missing or unreadable
            cli.fail(f"run_id={run_id}: its config.yaml and weights/ cannot be read "
                     f"({cli.one_line(exc)}); a rerun compares against them, so it needs a run "
                     "whose artifacts are intact.")
    return config, weights, predictions


def _same_data_and_code(config: dict, tags: dict):
    """(the logged run's config, to train again; this code's git state): one line and exit 2
    where the data is not the bytes the run trained on; a warning where the code differs."""
    from digitlab import runner
    from digitlab.config import ConfigError, run_config_from_dict
    from digitlab.data.errors import DataError

    try:
        run_cfg = run_config_from_dict(config)
        run_cfg.tracking.skip_finished = False  # the point is to train it again
        split = runner.load_split(run_cfg)
    except (ConfigError, DataError) as exc:
        cli.fail(str(exc))
    if split.digest != tags.get(tag.DATA_DIGEST):
        cli.fail(f"the data differs from the logged run's: sha256 {split.digest[:16]}… here, "
                 f"{tags.get(tag.DATA_DIGEST, '?')[:16]}… logged ({run_cfg.data.name}); "
                 "point data.root / data.path at the files the run used.")
    code = cli.git_state()
    if tags.get(tag.GIT_COMMIT) != code[tag.GIT_COMMIT]:
        print(f"warning: the run was logged at commit {tags.get(tag.GIT_COMMIT)}, this is "
              f"{code[tag.GIT_COMMIT]}", file=sys.stderr)
    if tags.get(tag.GIT_DIRTY) == "true":
        print("warning: the run was logged from a tree with uncommitted changes", file=sys.stderr)
    here = runner.numerics(runner.with_resolved_threads(run_cfg))
    for key in tag.NUMERICS:  # a run logged before these were recorded has none
        if tags.get(key) is not None and tags[key] != here[key]:
            print(f"note: {key} is {here[key]} here, {tags[key]} in the logged run: the bits may "
                  "differ for that reason", file=sys.stderr)
    return run_cfg, code
