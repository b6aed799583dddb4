"""The status command's logic; its usage and what it does: pipelines/status.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from digitlab import cli
from digitlab.config import StoreConfig


@dataclass
class StatusConfig:
    tracking: StoreConfig = field(default_factory=StoreConfig)
    # mark the stale runs KILLED, as every other command that opens the store does; false: show them
    reap: bool = True


ConfigStore.instance().store(name="base_status", node=StatusConfig)


def run(cfg: StatusConfig) -> None:
    """The command's work, from its composed config."""
    cli.refuse_unknown_keys(cfg)
    from digitlab import tags as tag
    from digitlab.tracking.queries import store_status
    from digitlab.tracking.store import client_for, mark_dead_runs_killed

    uri = cli.checked_store(cfg.tracking.uri, reap=False)  # shown before they are reaped
    table, stale = store_status(uri)
    print(f"store: {uri}\n")
    print(table.to_string(index=False) if len(table) else "no experiments yet")
    _latest_sweep(uri)
    if not stale:
        print("\nno stale runs")
        return
    print(f"\n{len(stale)} stale run(s): RUNNING, but their process is gone")
    for run in stale:
        print(f"  {run.info.run_id}  {run.info.run_name}  pid {run.data.tags[tag.PID]}")
    if cfg.reap:
        mark_dead_runs_killed(client_for(uri))
        print("marked KILLED")
    else:
        print("left RUNNING (reap=false); the next command on this store marks them KILLED")



def _latest_sweep(uri: str) -> None:
    """Where the MLflow UI shows the latest sweep's runs (make ui prints it before it starts)."""
    from digitlab.cli import project
    from digitlab.tracking.queries import find_sweep
    from digitlab.tracking.store import ui_path

    try:
        parent = find_sweep(uri, None)
    except LookupError:  # no sweep yet
        return
    print(f"\nthe latest sweep, {parent.info.run_name!r} ({parent.info.run_id}), its runs: "
          f"{project.ui_page(uri, ui_path(parent.info.experiment_id))}")
