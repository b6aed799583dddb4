"""Hydra's basic sweeper without its second composition of jobs already checked.

Before launching, the basic sweeper composes every job once to fail early, and the launcher then
composes it again to run it: ≈ 0.2 s a job each. pipelines/train.py's preflight composes and
checks every job before Hydra starts (with one-line errors and exit code 2) and records them in
`digitlab.composition.CHECKED`; those are not composed a second time. Jobs preflight did not see
are checked as Hydra checks them. Selected by conf/hydra/sweeper/preflighted.yaml.
"""

from __future__ import annotations

from typing import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from digitlab.composition import CHECKED


class PreflightedSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if not all(tuple(job) in CHECKED for job in batch):
            super().validate_batch_is_legal(batch)
