"""digitlab.cli.composition: a sweep's jobs expanded as Hydra's basic sweeper expands them, keys
the schema does not know refused; and the sweeper that does not compose checked jobs again."""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from digitlab.cli import composition
from digitlab.cli.composition import expand_sweep
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


def test_the_basic_sweeper_is_where_the_plugin_imports_it():
    """The one private Hydra name digitlab uses: if Hydra moves it, this fails first."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    from hydra_plugins.digitlab_sweeper.preflighted_sweeper import PreflightedSweeper

    assert issubclass(PreflightedSweeper, BasicSweeper)
    assert callable(BasicSweeper.split_arguments)


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


def test_the_sweeper_composes_only_jobs_preflight_did_not_check(monkeypatch):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    from hydra_plugins.digitlab_sweeper import preflighted_sweeper

    composed = []
    monkeypatch.setattr(BasicSweeper, "validate_batch_is_legal",
                        lambda self, batch: composed.extend(batch))
    monkeypatch.setattr(composition, "CHECKED", {("seed=1",): object()})
    monkeypatch.setattr(preflighted_sweeper, "CHECKED", composition.CHECKED)
    sweeper = preflighted_sweeper.PreflightedSweeper(max_batch_size=None)
    sweeper.validate_batch_is_legal([["seed=1"]])
    assert composed == []
    sweeper.validate_batch_is_legal([["seed=1"], ["seed=2"]])
    assert composed == [["seed=1"], ["seed=2"]]


def test_each_config_is_one_job(monkeypatch):
    """seed=1,1 and model.hidden=32,[32] (two spellings of one config) are one job each."""
    from dataclasses import replace

    from digitlab.config import ModelConfig, RunConfig

    one, other = RunConfig(seed=1), RunConfig(seed=2)
    hidden = RunConfig(model=ModelConfig(hidden=[32]))
    monkeypatch.setattr(composition, "CHECKED", {
        ("seed=1",): one, ("seed=2",): other, ("model.hidden=32",): hidden,
        ("model.hidden=[32]",): replace(hidden)})
    jobs = [["seed=1"], ["seed=2"], ["seed=1"], ["model.hidden=32"], ["model.hidden=[32]"],
            ["seed=3"]]
    assert composition.distinct_jobs(jobs) == [["seed=1"], ["seed=2"], ["model.hidden=32"],
                                               ["seed=3"]]


def test_the_sweeper_launches_each_config_once(monkeypatch):
    from hydra_plugins.digitlab_sweeper import preflighted_sweeper

    parsed = OverridesParser.create().parse_overrides(["seed=1,1,2", "optim.lr=0.1"])
    batches = preflighted_sweeper.PreflightedSweeper.split_arguments(parsed, None)
    assert batches == [[["seed=1", "optim.lr=0.1"], ["seed=2", "optim.lr=0.1"]]]
    assert preflighted_sweeper.PreflightedSweeper.split_arguments(parsed, 1) == [
        [["seed=1", "optim.lr=0.1"]], [["seed=2", "optim.lr=0.1"]]]
