"""Typed schemas of a run's configuration.

These dataclasses are what the library takes. Hydra composes YAML against them (see
`register_configs`), and `OmegaConf.to_object` turns the composed config into these objects,
running each `__post_init__` check before any run is created. Importing this module imports
neither Hydra nor MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

from digitlab.nn import (
    LoopSettings,
    NetworkSettings,
    OptimizerSettings,
    functions,
    init,
    optimizers,
)

# the names a user may choose are the registries' keys
ACTIVATIONS = tuple(functions.ACTIVATIONS)
OUTPUTS = tuple(functions.OUTPUTS)
LOSSES = tuple(functions.LOSSES)
# the losses each output supports (log-losses need outputs in (0, 1))
LOSS_OUTPUTS = {output: tuple(name for name, loss in functions.LOSSES.items()
                              if loss.outputs is None or output in loss.outputs)
                for output in OUTPUTS}
INITS = tuple(init.INITS)
OUTPUT_INITS = ("same", "zero")
DATASETS = ("digits", "mnist", "fashion_mnist", "kaggle_csv")
SCALINGS = ("unit", "raw", "minmax", "minmax_feature", "standard", "rashid")
TEST_SPLITS = ("official", "stratified", "bernoulli", "none")
VAL_MODES = ("stratified", "last", "none")
OPTIMIZERS = tuple(optimizers.OPTIMIZERS)
L2_STYLES = ("nielsen", "sklearn")
SCHEDULES = tuple(optimizers.SCHEDULES)
ORDERS = tuple(init.ORDERS)
DTYPES = ("float32", "float64")
ENGINES = ("auto", "numpy", "reference")
TRAIN_METRICS = ("running", "full")
EARLY_STOPPING = ("none", "train_loss", "val_accuracy")
DIAGNOSTICS = ("layers", "off")  # digitlab.nn.network


class ConfigError(ValueError):
    """A configuration value outside what is allowed; the message names key, value and fix."""


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}.")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    _require(value in choices, key, value, "one of " + ", ".join(choices))


@dataclass
class DataConfig:
    name: str = "digits"  # which dataset; set by data=<digits|mnist|fashion_mnist|kaggle_csv>
    root: Optional[str] = None  # folder of the four IDX files (mnist, fashion_mnist)
    path: Optional[str] = None  # a Kaggle-format CSV (kaggle_csv)
    download: bool = False  # opt-in OpenML download when root holds no files
    cache_dir: Optional[str] = None  # parsed arrays; None = $DIGITLAB_CACHE or ~/.cache/digitlab
    scale: str = "unit"  # pixels / max → [0, 1], the usual input range of a sigmoid network
    test_split: str = "official"  # official where the dataset has one, else stratified; none = all rows train
    test_size: float = 0.2  # for datasets without an official test set
    bernoulli_p: float = 0.8  # the blog network's split: each row is training with this probability
    val_mode: str = "stratified"  # stratified | last (Nielsen's last 10,000) | none
    val_size: float = 0.1  # fraction in (0, 1), or a row count ≥ 1
    train_limit: Optional[int] = None  # keep only the first N training rows (Nielsen's 1,000)

    def __post_init__(self) -> None:
        _choice("data.name", self.name, DATASETS)
        _choice("data.scale", self.scale, SCALINGS)
        _choice("data.test_split", self.test_split, TEST_SPLITS)
        _choice("data.val_mode", self.val_mode, VAL_MODES)
        _require(0 < self.test_size < 1, "data.test_size", self.test_size, "a fraction in (0, 1)")
        _require(0 < self.bernoulli_p < 1, "data.bernoulli_p", self.bernoulli_p, "a value in (0, 1)")
        _require(
            self.val_mode == "none" or (0 < self.val_size < 1 or float(self.val_size).is_integer()
                                        and self.val_size >= 1),
            "data.val_size", self.val_size, "a fraction in (0, 1) or a whole row count ≥ 1",
        )
        _require(self.train_limit is None or self.train_limit >= 1, "data.train_limit",
                 self.train_limit, "null or a row count ≥ 1")
        if self.name == "kaggle_csv":
            _require(bool(self.path), "data.path", self.path,
                     "the path of a Kaggle 'Digit Recognizer' train.csv (data.path=/path/train.csv)")


@dataclass
class ModelConfig(NetworkSettings):
    """model.*: the network's architecture (its fields and defaults: digitlab.nn)."""

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, (int, float)) and not isinstance(hidden, bool):
            hidden = [hidden]
        try:
            widths = [int(h) for h in hidden]
        except (TypeError, ValueError):
            widths = None
        _require(widths is not None and all(w >= 1 and w == h for w, h in zip(widths, hidden)),
                 "model.hidden", self.hidden, "a width ≥ 1 or a list of them, e.g. 100 or [300,100]")
        self.hidden = widths
        _choice("model.activation", self.activation, ACTIVATIONS)
        _choice("model.output", self.output, OUTPUTS)
        _choice("model.loss", self.loss, LOSSES)
        _choice("model.init", self.init, INITS)
        _choice("model.output_init", self.output_init, OUTPUT_INITS)
        _require(self.init_scale > 0, "model.init_scale", self.init_scale, "a value > 0")
        _require(self.target_low < self.target_high, "model.target_low", self.target_low,
                 f"a value below model.target_high={self.target_high}")
        _require(self.loss in LOSS_OUTPUTS[self.output], "model.loss", self.loss,
                 f"one of {', '.join(LOSS_OUTPUTS[self.output])} with model.output={self.output}")


@dataclass
class OptimConfig(OptimizerSettings):
    """optim.*: the optimizer (its fields and defaults: digitlab.nn)."""

    def __post_init__(self) -> None:
        _choice("optim.name", self.name, OPTIMIZERS)
        _require(self.lr > 0, "optim.lr", self.lr, "a learning rate > 0, e.g. optim.lr=0.1")
        _require(0 <= self.momentum < 1, "optim.momentum", self.momentum, "a value in [0, 1)")
        _require(self.l2 >= 0, "optim.l2", self.l2, "a value ≥ 0")
        _choice("optim.l2_style", self.l2_style, L2_STYLES)
        _choice("optim.schedule", self.schedule, SCHEDULES)
        _require(0 < self.gamma <= 1, "optim.gamma", self.gamma, "a factor in (0, 1]")
        _require(0 <= self.beta1 < 1, "optim.beta1", self.beta1, "a value in [0, 1)")
        _require(0 <= self.beta2 < 1, "optim.beta2", self.beta2, "a value in [0, 1)")
        _require(self.epsilon > 0, "optim.epsilon", self.epsilon, "a value > 0")
        _require(not (self.nesterov and self.momentum == 0), "optim.nesterov", self.nesterov,
                 "false unless optim.momentum > 0")


@dataclass
class TrainerConfig(LoopSettings):
    """trainer.*: the training loop (digitlab.nn), scoring and early stopping."""

    train_metrics: str = "running"  # running = from the epoch's own forward passes (free)
    eval_test: bool = False  # score the test set after every epoch (Nielsen's curves)
    early_stopping: str = "none"  # none | train_loss (scikit-learn's rule) | val_accuracy
    patience: int = 10  # epochs without improvement (scikit-learn's n_iter_no_change)
    tol: float = 1e-4  # the improvement that counts (scikit-learn's tol)
    # layers = per-layer gradient, weight, update and saturation metrics on ≤ 1,000 probe rows
    # after every epoch and before the first (digitlab.nn.network; ≈ 1 % of an MNIST epoch,
    # benchmarks/bench_diagnostics.py); off = none. Records more, trains the same: not part of
    # a run's identity
    diagnostics: str = "layers"

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, "trainer.epochs", self.epochs, "an integer ≥ 1")
        _require(self.blas_threads in ("auto", None) or (
            isinstance(self.blas_threads, int) and not isinstance(self.blas_threads, bool)
            and self.blas_threads >= 1), "trainer.blas_threads", self.blas_threads,
            "auto, an integer ≥ 1, or null for every core")
        _require(self.batch_size >= 1, "trainer.batch_size", self.batch_size, "an integer ≥ 1")
        _require(self.eval_batch_size >= 1, "trainer.eval_batch_size", self.eval_batch_size,
                 "an integer ≥ 1")
        _choice("trainer.order", self.order, ORDERS)
        _choice("trainer.dtype", self.dtype, DTYPES)
        _choice("trainer.engine", self.engine, ENGINES)
        _choice("trainer.train_metrics", self.train_metrics, TRAIN_METRICS)
        _choice("trainer.early_stopping", self.early_stopping, EARLY_STOPPING)
        _choice("trainer.diagnostics", self.diagnostics, DIAGNOSTICS)
        _require(self.patience >= 1, "trainer.patience", self.patience, "an integer ≥ 1")
        _require(self.tol >= 0, "trainer.tol", self.tol, "a value ≥ 0")


@dataclass
class StoreConfig:
    """The MLflow store a command reads or writes (`tracking.uri=`), the same key in every
    pipeline."""
    uri: Optional[str] = None  # None = $MLFLOW_TRACKING_URI, else sqlite under <project>/mlruns

    def __post_init__(self) -> None:
        # every param is logged, this one too: a password in it would be shown to all readers
        scheme, _, rest = (self.uri or "").partition("://")
        authority, _, path = rest.partition("/")
        _require("@" not in authority, "tracking.uri",
                 f"{scheme}://…@{authority.rpartition('@')[2]}/{path}".rstrip("/"),
                 "a URI without a login (http://host:port): give it in MLFLOW_TRACKING_USERNAME "
                 "and MLFLOW_TRACKING_PASSWORD")


@dataclass
class ExperimentStoreConfig(StoreConfig):
    """A store and one MLflow experiment in it (`tracking.experiment=`)."""
    experiment: str = "digitlab"  # the MLflow experiment the runs go to

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(isinstance(self.experiment, str) and self.experiment.strip() != "",
                 "tracking.experiment", self.experiment, "a non-empty MLflow experiment name")


@dataclass
class ExperimentFilterConfig(StoreConfig):
    """A store, and the MLflow experiment a command reads (`tracking.experiment=`)."""
    experiment: Optional[str] = None  # null = every experiment of the store

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.experiment is None or str(self.experiment).strip() != "",
                 "tracking.experiment", self.experiment,
                 "a non-empty MLflow experiment name, or null for the default")


def dataset_experiment(data_name: str) -> str:
    """The MLflow experiment a run on this dataset goes to by default: one per dataset, so the
    UI's run table never mixes the digits with MNIST."""
    return f"digitlab-{data_name}"


@dataclass
class TrackingConfig(ExperimentFilterConfig):
    """Where and whether a training run is recorded."""
    # the MLflow experiment the runs go to; null = digitlab-<data.name>, one per dataset
    experiment: Optional[str] = None
    enabled: bool = True  # false (tracking=off) = nothing is recorded in MLflow
    log_model: bool = True  # the pyfunc model: ≈ 0.1 s of a run; off for big sweeps
    parent_run_id: Optional[str] = None  # join this parent run instead of starting one (reproduce)
    skip_finished: bool = True  # a config (and data) that already FINISHED is not trained again


@dataclass
class PublishedConfig:
    """What a publication reports, so `reproduce` compares data, not code (docs/references.md)."""

    value: Optional[float] = None  # in percent; None = no published number (a baseline)
    metric: str = "accuracy"  # accuracy | error
    split: str = "test"  # train | val | test
    selection: str = "final"  # best (epoch) | final (epoch) | test_at_best_val
    runs: int = 1  # how many training runs the number summarises
    aggregate: str = "best"  # best | mean over the runs (seeds)
    tolerance: float = 0.5  # percentage points
    rule: str = "within"  # within: |Δ| ≤ tolerance; at_most: reproduced error ≤ published
    source: str = ""
    recipe: str = ""  # one line for the table
    curve: Optional[str] = None  # published per-epoch curve, under data/published_curves/
    curve_key: Optional[str] = None  # the series' key in a JSON object, if any
    curve_index: int = 1  # the series' index: Nielsen's files are [cost, correct, cost, correct]
    curve_total: int = 10000  # counts in the curve are out of this many images
    # Nielsen ch.5's "speed of learning": ‖∂C/∂bˡ‖ of each hidden layer before training, as
    # published; the row is then judged on the layer1…layerk.grad_b_norm diagnostics and `curve`
    # holds their per-epoch values ([[‖δ¹‖, …], …], one entry per epoch from 0)
    speed: Optional[List[float]] = None
    min_seeds: int = 1  # the seeds a verdict needs: reproduce.py trains max(seeds, min_seeds)

    def __post_init__(self) -> None:
        _choice("published.metric", self.metric, ("accuracy", "error"))
        _choice("published.split", self.split, ("train", "val", "test"))
        _choice("published.selection", self.selection, ("best", "final", "test_at_best_val"))
        _choice("published.aggregate", self.aggregate, ("best", "mean"))
        _choice("published.rule", self.rule, ("within", "at_most"))


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0  # the one seed: split, initial weights and sample order
    published: Optional[PublishedConfig] = None
    experiment_id: Optional[str] = None  # set by conf/experiment/<id>.yaml

    def __post_init__(self) -> None:
        _require(isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed,
                 "a whole number ≥ 0 (numpy's SeedSequence takes no negative seeds)")
        for name in ("data", "model", "optim", "trainer"):  # inf passes every `> 0` check
            group = getattr(self, name)
            for key in fields(group):
                value = getattr(group, key.name)
                if isinstance(value, float):
                    _require(math.isfinite(value), f"{name}.{key.name}", value, "a finite number")
        if self.tracking.experiment is None:
            self.tracking.experiment = dataset_experiment(self.data.name)


# keys that change how a run is recorded, kept or how fast it trains, never the numbers it trains
# to: left out of a run's identity (a run that differs only in them is skipped as FINISHED) and
# of its config (runs that differ only in them are one config). diagnostics: what is recorded;
# blas_threads: OpenBLAS computes each GEMM output element on one thread in one order, so 1 and 2
# threads give the same bits (tests/test_training.py checks it); cache_dir: where parsed arrays
# are kept, whose bytes the data's digest covers
NOT_TRAINED_BY = ("trainer.diagnostics", "trainer.blas_threads", "data.cache_dir")

IDX_DATASETS = ("mnist", "fashion_mnist")  # the datasets read from IDX files, with a test set
# keys that act only under another key's value: (whether they act in this config, where they do)
ACTS_ONLY = {
    "data.root": (lambda c: c.data.name in IDX_DATASETS, "data=mnist or data=fashion_mnist"),
    "data.download": (lambda c: c.data.name in IDX_DATASETS, "data=mnist or data=fashion_mnist"),
    "data.path": (lambda c: c.data.name == "kaggle_csv", "data=kaggle_csv"),
    "data.bernoulli_p": (lambda c: c.data.test_split == "bernoulli", "data.test_split=bernoulli"),
    "data.test_size": (lambda c: c.data.test_split == "stratified" or (
        c.data.test_split == "official" and c.data.name not in IDX_DATASETS),
        "data.test_split=stratified, or on a dataset without an official test set"),
    "data.val_size": (lambda c: c.data.val_mode != "none", "data.val_mode=stratified or last"),
    "model.init_scale": (lambda c: c.model.init == "uniform", "model.init=uniform"),
    "optim.momentum": (lambda c: c.optim.name == "sgd", "optim=sgd"),
    "optim.nesterov": (lambda c: c.optim.name == "sgd", "optim=sgd"),
    "optim.gamma": (lambda c: c.optim.schedule == "exponential", "optim.schedule=exponential"),
    "optim.l2_style": (lambda c: c.optim.l2 > 0, "optim.l2 > 0 (there is no L2 term to scale)"),
    "optim.beta1": (lambda c: c.optim.name == "adam", "optim=adam"),
    "optim.beta2": (lambda c: c.optim.name == "adam", "optim=adam"),
    "optim.epsilon": (lambda c: c.optim.name == "adam", "optim=adam"),
    "trainer.patience": (lambda c: c.trainer.early_stopping != "none",
                         "trainer.early_stopping=train_loss or val_accuracy"),
    "trainer.tol": (lambda c: c.trainer.early_stopping != "none",
                    "trainer.early_stopping=train_loss or val_accuracy"),
    "trainer.eval_test": (lambda c: c.data.test_split != "none",
                          "a test split (data.test_split other than none)"),
}


def check_given_keys_act(cfg: RunConfig, given: list[str]) -> None:
    """A key given on the command line that this config would not use (data.root with the
    embedded digits, optim.beta1 with SGD) is refused: a run must not claim a setting it ignored."""
    for key in given:
        acts, where = ACTS_ONLY.get(key, (None, ""))
        if acts is not None and not acts(cfg):
            raise ConfigError(f"{key} changes nothing in this run: it acts only with {where}.")


# keys added after runs had been logged, with the value that names what the code did before them:
# a config logged without trainer.engine was trained by NumPy calls, at batch 1 too
LATER_KEYS = {"trainer": {"engine": "numpy", "diagnostics": "off"}}


def run_config_from_dict(tree: dict) -> RunConfig:
    """A RunConfig from its logged config.yaml (dataclasses.asdict form), checks included."""
    groups = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig,
              "trainer": TrainerConfig, "tracking": TrackingConfig}
    values = {name: schema(**{**LATER_KEYS.get(name, {}), **tree.get(name, {})})
              for name, schema in groups.items()}
    published = tree.get("published")
    return RunConfig(**values, seed=tree.get("seed", 0), experiment_id=tree.get("experiment_id"),
                     published=PublishedConfig(**published) if published else None)
