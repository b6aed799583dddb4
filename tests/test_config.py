"""Config composition with Hydra's Compose API: every option of every group, every experiment
file, and the checks that run before any run is created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from digitlab.cli.project import register_configs
from digitlab.config import ConfigError, RunConfig, check_given_keys_act

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["data", "model", "optim", "trainer", "tracking"]

register_configs()


def _compose(*overrides: str) -> RunConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="train", overrides=list(overrides)))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_of_every_group_composes(group, option):
    extra = ["data.path=/tmp/train.csv"] if option == "kaggle_csv" else []
    cfg = _compose(f"{group}={option}", *extra)
    assert isinstance(cfg, RunConfig)
    if group == "data":
        assert cfg.data.name == option
    if group == "optim":
        assert cfg.optim.name == option


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_file_composes(experiment):
    cfg = _compose(f"experiment={experiment}", "data.path=/tmp/train.csv")
    assert cfg.experiment_id == experiment


def _recipe_claims(recipe: str) -> dict:
    """The values a recipe line states, by the conventions its lines share: "784-30-10 sigmoid,
    …, b10 η=3.0, λ=5.0, 30 ep", "per sample", "μ=0.9", "α=1e-4", "(reconstructed)"."""
    import re

    claims, number = {}, r"([0-9][0-9.]*(?:e-?[0-9]+)?)"
    if layers := re.match(r"(\d+(?:-\d+)+)", recipe):
        claims["layers"] = layers.group(1)
    for key, pattern in (("batch_size", r"\bb(\d+)\b"), ("lr", rf"(?:η=|\blr ){number}"),
                         ("l2", rf"[λα]={number}"), ("momentum", rf"μ={number}"),
                         ("epochs", r"(\d+) (?:ep\b|passes)")):
        if found := re.search(pattern, recipe):
            claims[key] = float(found.group(1))
    if unit := re.match(r"[\d-]+ (sigmoid|logistic|tanh|relu)\b", recipe):
        claims["activation"] = unit.group(1).replace("logistic", "sigmoid")
    if "per sample" in recipe:
        claims["batch_size"] = 1.0
    if adam := re.search(rf"Adam {number}", recipe):
        claims["lr"] = float(adam.group(1))
    claims["reconstructed"] = "(reconstructed)" in recipe
    return claims


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_recipe_line_says_what_its_config_does(experiment):
    cfg = _compose(f"experiment={experiment}", "data.path=/tmp/train.csv")
    if not cfg.published or not cfg.published.recipe:
        return
    claims = _recipe_claims(cfg.published.recipe)
    actual = {"batch_size": cfg.trainer.batch_size, "lr": cfg.optim.lr, "l2": cfg.optim.l2,
              "momentum": cfg.optim.momentum, "epochs": cfg.trainer.epochs,
              "reconstructed": cfg.published.rule == "at_most", "activation": cfg.model.activation}
    if "layers" in claims:
        inputs = 64 if cfg.data.name == "digits" else 784
        actual["layers"] = "-".join(str(w) for w in [inputs, *cfg.model.hidden, 10])
        assert actual["layers"].startswith(claims.pop("layers")), cfg.published.recipe
    for key, value in claims.items():
        expected = value if isinstance(value, str) else pytest.approx(value)
        assert actual[key] == expected, f"{key} in {cfg.published.recipe!r}"


def test_defaults_are_the_digits_run():
    cfg = _compose()
    assert (cfg.data.name, cfg.model.hidden, cfg.optim.name, cfg.trainer.dtype, cfg.seed) == (
        "digits", [32], "sgd", "float32", 0)
    assert cfg.tracking.enabled and cfg.tracking.experiment == "digitlab-digits"


@pytest.mark.parametrize("data", ["digits", "mnist", "fashion_mnist", "kaggle_csv"])
def test_each_dataset_has_its_own_experiment_unless_one_is_named(data):
    extra = {"mnist": ["data.root=/nowhere"], "fashion_mnist": ["data.root=/nowhere"],
             "kaggle_csv": ["data.path=/nowhere.csv"]}.get(data, [])
    assert _compose(f"data={data}", *extra).tracking.experiment == f"digitlab-{data}"
    assert _compose(f"data={data}", *extra, "tracking.experiment=mine").tracking.experiment == (
        "mine")


@pytest.mark.parametrize("override,hidden", [("model.hidden=100", [100]),
                                             ("model.hidden=[300,100]", [300, 100]),
                                             ("model.hidden=[]", [])])
def test_hidden_takes_a_width_or_a_list(override, hidden):
    assert _compose(override).model.hidden == hidden


@pytest.mark.parametrize("override", ["optim.lrr=0.1", "trainer.epochs=ten", "seed=x",
                                      "optim=rmsprop", "data=cifar"])
def test_typos_wrong_types_and_unknown_options_fail_at_compose_time(override):
    with pytest.raises(ConfigCompositionException):
        _compose(override)


@pytest.mark.parametrize("override,fragment", [
    ("optim.lr=-0.5", "optim.lr=-0.5"), ("optim.lr=0", "optim.lr=0"),
    ("model.hidden=0", "model.hidden=0"), ("model.hidden=abc", "model.hidden='abc'"), ("model.hidden=[30,-1]", "model.hidden=[30, -1]"),
    ("trainer.batch_size=0", "trainer.batch_size=0"), ("trainer.epochs=0", "trainer.epochs=0"),
    ("data.val_size=1.5", "data.val_size=1.5"), ("data.test_size=1.0", "data.test_size=1.0"),
    ("model.activation=swish", "model.activation='swish'"), ("model.loss=hinge", "model.loss"),
    ("model.init=he", "model.init='he'"), ("optim.momentum=1.2", "optim.momentum=1.2"),
    ("optim.schedule=cosine", "optim.schedule"), ("optim.gamma=1.5", "optim.gamma=1.5"),
    ("trainer.order=reverse", "trainer.order"),
    ("trainer.dtype=float16", "trainer.dtype"), ("data=kaggle_csv", "data.path=None"),
    ("model.output=softmax model.loss=binary_ce", "model.loss='binary_ce'"),
    ("trainer.blas_threads=0", "trainer.blas_threads=0"),
    ("trainer.blas_threads=many", "trainer.blas_threads='many'"),
])
def test_bad_values_name_key_value_and_what_is_allowed(override, fragment):
    with pytest.raises(ConfigError) as exc:
        _compose(*override.split())
    assert fragment in str(exc.value) and "expected" in str(exc.value)


@pytest.mark.parametrize("overrides,threads", [
    (["trainer.batch_size=1"], 1),  # auto at batch 1: rank-1 updates on one thread
    (["trainer.blas_threads=2", "trainer.batch_size=1"], 2),
    (["trainer.blas_threads=null"], None),
])
def test_blas_threads_of_the_mini_batch_loop(overrides, threads):
    assert _compose(*overrides).trainer.loop_threads() == threads


def test_auto_threads_are_resolved_to_the_count_a_run_uses():
    from threadpoolctl import threadpool_limits

    from digitlab.runner import with_resolved_threads

    with threadpool_limits(limits=1, user_api="blas"):  # a joblib job's share of the cores
        assert with_resolved_threads(_compose()).trainer.blas_threads == 1
    assert with_resolved_threads(_compose("trainer.batch_size=1")).trainer.blas_threads == 1
    assert with_resolved_threads(_compose("trainer.blas_threads=3")).trainer.blas_threads == 3
    resolved = with_resolved_threads(_compose()).trainer.blas_threads
    assert isinstance(resolved, int) and resolved >= 1


def test_gamma_acts_only_with_the_exponential_schedule():
    with pytest.raises(ConfigError, match="optim.gamma changes nothing in this run"):
        check_given_keys_act(_compose("optim.gamma=0.9"), ["optim.gamma"])
    check_given_keys_act(_compose("optim.schedule=exponential", "optim.gamma=0.9"), ["optim.gamma"])


@pytest.mark.parametrize("ignored, acting, key, where", [
    (["trainer.eval_test=true", "data.test_split=none"], ["trainer.eval_test=true"],
     "trainer.eval_test", "a test split"),
    (["optim.l2_style=sklearn"], ["optim.l2_style=sklearn", "optim.l2=0.1"], "optim.l2_style",
     "optim.l2 > 0"),  # the default l2 is 0
])
def test_eval_test_and_l2_style_act_only_where_they_change_the_run(ignored, acting, key, where):
    with pytest.raises(ConfigError, match=f"{key} changes nothing in this run: it acts only "
                                          f"with {where}"):
        check_given_keys_act(_compose(*ignored), [key])
    check_given_keys_act(_compose(*acting), [key])


def test_the_names_a_user_may_choose_are_the_registries_keys():
    from digitlab import config
    from digitlab.data.split import SCALERS
    from digitlab.nn import functions, init, optimizers

    for names, registry in ((config.ACTIVATIONS, functions.ACTIVATIONS),
                            (config.OUTPUTS, functions.OUTPUTS), (config.LOSSES, functions.LOSSES),
                            (config.INITS, init.INITS), (config.OPTIMIZERS, optimizers.OPTIMIZERS),
                            (config.SCHEDULES, optimizers.SCHEDULES),
                            (config.ORDERS, init.ORDERS), (config.SCALINGS, SCALERS)):
        assert sorted(names) == sorted(registry)


@pytest.mark.parametrize("n_jobs", [1, 2, -1, -2, -3])
def test_a_parallel_jobs_blas_threads_read_n_jobs_as_joblib_does(n_jobs):
    """hydra.launcher.n_jobs=-2 is every core but one (joblib's rule), not two jobs."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from digitlab.cli.job import _thread_limit

    cores = os.cpu_count() or 1
    hc = OmegaConf.create({"mode": RunMode.MULTIRUN, "launcher": {"n_jobs": n_jobs}})
    jobs = n_jobs if n_jobs > 0 else max(cores + 1 + n_jobs, 1)  # joblib's documented rule
    expected = None if n_jobs == 1 else max(1, cores // jobs)
    assert _thread_limit(hc) == expected


def test_every_key_has_its_one_line_description_for_help():
    from digitlab.cli.key_help import key_lines
    from digitlab.config import RunConfig

    lines = key_lines(RunConfig, leave_out=("published", "experiment_id"))
    keys = [line.split(":", 1)[0].strip() for line in lines]
    assert {"optim.lr", "model.hidden", "trainer.blas_threads", "tracking.uri", "seed"} <= set(keys)
    assert not [line for line in lines if line.endswith(": —")], "a key without a comment"
    assert all(len(line.split(": ", 1)[1]) <= 100 for line in lines)  # one line each
    assert "optim.lr: η, on the mini-batch's mean gradient" in "\n".join(lines)


def _float_keys() -> list[str]:
    from dataclasses import fields

    from digitlab.config import RunConfig

    run = RunConfig()
    return [f"{name}.{key.name}" for name in ("data", "model", "optim", "trainer")
            for key in fields(getattr(run, name))
            if isinstance(getattr(getattr(run, name), key.name), float)]


@pytest.mark.parametrize("key", _float_keys())
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_every_float_key_refuses_a_non_finite_value(key, value):
    """inf passes a `> 0` check: every float of a run's config is refused unless finite."""
    from dataclasses import replace

    from digitlab.config import ConfigError, RunConfig

    group, name = key.split(".")
    run = RunConfig()
    with pytest.raises(ConfigError, match=rf"{group}\.{name}="):
        RunConfig(**{**{g: getattr(run, g) for g in ("data", "model", "optim", "trainer")},
                     group: replace(getattr(run, group), **{name: value})})
