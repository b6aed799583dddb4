"""A sweep's jobs expanded as Hydra's basic sweeper expands them, each config once, keys the
schema does not know refused (digitlab.cli.preflight); the sweeper on Hydra's public interface."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from digitlab.cli.preflight import distinct_jobs, expand_sweep
from digitlab.config import ConfigError

COMMAND_LINES = [
    [],
    ["seed=3"],
    ["seed=0,1", "optim.lr=0.1,0.5", "model.hidden=[30,20]"],
    ["data=digits,fashion_mnist", "seed=3"],
    ["seed=1", "model.hidden=16,32", "seed=2,3"],  # a key given twice
    ["model.hidden=[16],[32,16]", "+trainer.x=1", "~experiment"],
    ["experiment=nielsen-ch1-30", "optim.lr='a b',c"],
    ["seed=choice(1,2)", "tracking.uri=sqlite:////tmp/x.db"],
    ["seed=range(0,3)", "optim.lr=0.1"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES)
def test_the_jobs_are_those_of_hydras_basic_sweeper(argv):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = OverridesParser.create().parse_overrides(argv)
    [hydras] = BasicSweeper.split_arguments(parsed, None) or [[[]]]
    jobs, swept = expand_sweep(argv)
    assert jobs == hydras
    assert swept == [o.get_key_element() for o in parsed if o.is_sweep_override()]


def test_a_range_sweep_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="list the values"):
        expand_sweep(["optim.lr=interval(0.1,0.5)"])


def test_each_config_is_one_job():
    """seed=1,1 and model.hidden=32,[32] (two spellings of one config) are one job each."""
    from dataclasses import replace

    from digitlab.config import ModelConfig, RunConfig

    one, other = RunConfig(seed=1), RunConfig(seed=2)
    hidden = RunConfig(model=ModelConfig(hidden=[32]))
    checked = {("seed=1",): one, ("seed=2",): other, ("model.hidden=32",): hidden,
               ("model.hidden=[32]",): replace(hidden)}
    jobs = [["seed=1"], ["seed=2"], ["seed=1"], ["model.hidden=32"], ["model.hidden=[32]"],
            ["seed=3"]]
    assert distinct_jobs(jobs, checked) == [["seed=1"], ["seed=2"], ["model.hidden=32"],
                                               ["seed=3"]]


def test_the_sweeper_is_built_on_hydras_public_interface():
    from hydra.plugins.sweeper import Sweeper

    from hydra_plugins.digitlab_sweeper.sweeper import DigitlabSweeper

    assert issubclass(DigitlabSweeper, Sweeper)
    assert [c for c in DigitlabSweeper.__mro__ if "_internal" in c.__module__] == []


def test_the_sweeper_launches_all_jobs_or_max_batch_size_at_a_time():
    from hydra_plugins.digitlab_sweeper.sweeper import batches

    jobs = [["seed=1"], ["seed=2"], ["seed=3"]]
    assert batches(jobs, None) == [(0, jobs)]
    assert batches(jobs, 2) == [(0, jobs[:2]), (2, jobs[2:])]
