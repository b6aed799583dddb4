"""digitlab.cli.composition: a sweep's job configs composed once per config-group choice and equal to
Hydra's own compose, errors included; and the sweeper that does not compose checked jobs again."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf

from digitlab.cli import composition
from digitlab.cli.composition import JobComposer
from digitlab.cli.project import register_configs

CONF = Path(__file__).resolve().parents[1] / "conf"

register_configs()

JOBS = [
    [],
    ["seed=3"],
    ["seed=4", "optim.lr=0.1", "model.hidden=[30,20]"],
    ["data=fashion_mnist", "seed=3"],
    ["seed=3", "data=fashion_mnist", "trainer.batch_size=1"],  # a group after a value
    ["experiment=nielsen-ch1-30", "optim.lr=0.5"],  # a recipe, then a value over it
    ["experiment=nielsen-ch1-30", "trainer.epochs=2", "tracking=off"],
    ["model.hidden=[]", "trainer.blas_threads=null", "tracking.uri=sqlite:////tmp/x.db"],
    ["~experiment", "seed=1"],
    ["data.path=/tmp/train.csv", "data=kaggle_csv"],
]


@pytest.fixture()
def hydra_dir():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def test_each_job_is_what_hydra_composes(hydra_dir):
    composer = JobComposer(CONF, "train")
    for overrides in JOBS:
        ours = OmegaConf.to_container(composer.compose(overrides))
        assert ours == OmegaConf.to_container(compose("train", overrides=overrides)), overrides
    # one Hydra composition per distinct set of group choices, not one per job
    assert len(composer.composed) == 6


def test_a_job_cannot_change_the_shared_composition(hydra_dir):
    composer = JobComposer(CONF, "train")
    composer.compose(["seed=9", "model.hidden=[5]"])
    assert composer.compose([]).seed == 0
    assert list(composer.compose([]).model.hidden) == [32]


@pytest.mark.parametrize("overrides", [["trainer.epoch=3"], ["seed=abc"], ["+seed=2"],
                                       ["data=nope"], ["trainer.epochs=[1]"],
                                       ["data=fashion_mnist", "optim.lrr=0.1"]])
def test_bad_overrides_fail_with_hydras_own_error(hydra_dir, overrides):
    with pytest.raises(HydraException) as hydra_error:
        compose("train", overrides=overrides)
    with pytest.raises(HydraException) as ours:
        JobComposer(CONF, "train").compose(overrides)
    assert type(ours.value) is type(hydra_error.value)
    assert str(ours.value) == str(hydra_error.value)


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


def test_the_launchers_loader_gives_each_job_what_hydra_composes(hydra_dir):
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from digitlab.cli.composition import SweepConfigLoader

    hydra_loader = GlobalHydra.instance().config_loader()
    master = hydra_loader.load_configuration(
        "train", overrides=["seed=0,1", "hydra/launcher=joblib", "hydra.job.chdir=false"],
        run_mode=RunMode.MULTIRUN)
    SweepConfigLoader.composed.clear()
    ours = SweepConfigLoader(hydra_loader)
    for overrides in [*JOBS, ["hydra.job.name=x", "seed=2"]]:
        expected = hydra_loader.load_sweep_config(master, overrides)
        got = ours.load_sweep_config(master, overrides)
        assert OmegaConf.to_container(got) == OmegaConf.to_container(expected), overrides
        assert list(got.hydra.overrides.task) == [o for o in overrides if o[:6] != "hydra."]
    assert len(SweepConfigLoader.composed) == 6  # one per distinct set of group choices
    again = pickle.loads(pickle.dumps(ours))  # as a joblib worker gets it, job after job
    assert isinstance(again, SweepConfigLoader) and again.composed is SweepConfigLoader.composed


@pytest.mark.parametrize("argv", [["seed=1", "optim.lr=0.1"], ["-m", "seed=0,1", "data=digits"]])
def test_hydra_reads_the_mode_preflight_composed_instead_of_composing_again(
        argv, monkeypatch, tmp_path):
    from hydra._internal.hydra import Hydra

    from digitlab import cli

    monkeypatch.chdir(tmp_path)
    overrides = [a for a in argv if not a.startswith("-")]
    cli.preflight(argv, "train")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        from hydra.core.global_hydra import GlobalHydra

        hydra = GlobalHydra.instance().hydra
        monkeypatch.setattr(hydra, "compose_config", lambda *a, **k: pytest.fail("composed"))
        assert hydra.get_mode("train", overrides) is None  # what conf/ says: no mode set
        monkeypatch.undo()
        # a command line preflight did not see is Hydra's to compose, with Hydra's answer
        assert hydra.get_mode("train", ["hydra.mode=MULTIRUN"]).name == "MULTIRUN"
