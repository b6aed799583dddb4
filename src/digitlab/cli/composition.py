"""Composing the configs of a sweep's jobs before Hydra launches them, remembering which jobs
were checked so Hydra's sweeper does not compose them once more, and the config loader the
sweeper hands its launcher (src/hydra_plugins/digitlab_sweeper). Used by the pipelines only: it
imports Hydra."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Callable, Sequence

from hydra import compose
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf, open_dict

from digitlab.config import ConfigError, RunConfig

# where a sweep's job leaves its outcome: <sweep folder>/<job number>/RESULT_FILE
RESULT_FILE = "digitlab_result.json"
# the sweep folder as the driver resolved it: a job on a Ray worker re-resolves ${now:} and
# ${pid:} (and a relative path) differently, so the driver hands its folder down in the
# environment (conf/hydra/launcher/ray_cluster.yaml forwards it to the workers)
SWEEP_DIR_ENV = "DIGITLAB_SWEEP_DIR"
# the jobs the pipeline's preflight composed and checked, by their override lists as Hydra's basic
# sweeper splits them; here, not in the plugin, because Hydra re-executes plugin modules
CHECKED: dict[tuple[str, ...], RunConfig] = {}


def is_value(override: Override, is_group: Callable[[str], bool]) -> bool:
    """seed=3, optim.lr=0.1, +x.y=1, ~x.y: a key of the config, not a config-group choice."""
    key = override.key_or_group
    if override.package is not None or "/" in key:
        return False
    return "." in key or not is_group(key)


def split_overrides(overrides: list[Override],
                    is_group: Callable[[str], bool]) -> tuple[list[Override], tuple[str, ...]]:
    """A job's value overrides, and its config-group choices as the key of their composition."""
    values, choices = [], []
    for override in overrides:
        if is_value(override, is_group):
            values.append(override)
        else:
            choices.append(override.input_line)
    return values, tuple(choices)


class JobComposer:
    """Hydra's compose for many jobs of one sweep, ≈ 40× faster: jobs that choose the same
    config-group options (data=…, experiment=…) share one composition, and each job's value
    overrides (seed=3, optim.lr=0.1) are applied to a copy of it by the very function Hydra's
    compose applies them with, after the defaults list is merged."""

    def __init__(self, config_dir: Path, config_name: str):
        self.config_dir, self.config_name = config_dir, config_name
        self.parser = OverridesParser.create()
        self.composed: dict[tuple[str, ...], DictConfig] = {}
        self.modes: set = set()  # hydra.mode of each composition: None unless a config sets it

    def _is_group(self, key: str) -> bool:
        return (self.config_dir / key).is_dir()

    def compose(self, overrides: list[str]) -> DictConfig:
        """The config of one job, as hydra.compose gives it (inside an initialize_config_dir)."""
        values, groups = split_overrides(self.parser.parse_overrides(overrides), self._is_group)
        if groups not in self.composed:
            self.composed[groups] = without_hydra_node(
                compose(config_name=self.config_name, overrides=list(groups),
                        return_hydra_config=True), self.modes)
        cfg = copy.deepcopy(self.composed[groups])
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        return cfg


def without_hydra_node(cfg: DictConfig, modes: set) -> DictConfig:
    """A composition with Hydra's node, as hydra.compose returns it without; its hydra.mode
    added to `modes`."""
    modes.add(cfg.hydra.mode)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


# hydra.mode by (config name, command-line overrides), for the command lines preflight composed
KNOWN_MODES: dict[tuple[str, tuple[str, ...]], object] = {}


def remember_mode(config_name: str, argv: list[str], modes: set) -> None:
    """Before it runs or sweeps, Hydra composes the whole config once more only to read hydra.mode
    (Hydra.get_mode, ≈ 0.1 s): for a command line whose every composition preflight made, the mode
    is what those said. A mode given on the command line is left to Hydra."""
    overrides = [a for a in argv if not a.startswith("-")]
    if len(modes) == 1 and not any(a.startswith("hydra.mode=") for a in overrides):
        KNOWN_MODES[(config_name, tuple(overrides))] = next(iter(modes))
        _install_known_modes()


def _install_known_modes() -> None:
    from hydra._internal.hydra import Hydra

    composing = Hydra.get_mode
    if getattr(composing, "knows_modes", False):
        return

    def get_mode(self, config_name, overrides):
        key = (config_name, tuple(overrides))
        return KNOWN_MODES[key] if key in KNOWN_MODES else composing(self, config_name, overrides)

    get_mode.knows_modes = True
    Hydra.get_mode = get_mode


class SweepConfigLoader:
    """Hydra's config loader as a sweep's launcher uses it, with the same sharing as JobComposer.
    Every launcher composes each job's whole config, Hydra's node included (≈ 0.1 s a job): the
    basic and Ray launchers in the sweep's main process, the joblib launcher in its workers. Here
    jobs that choose the same config groups share one composition per process, get their values
    applied to a copy of it by Hydra's own function, and their `hydra.overrides.task` and
    `hydra.job.override_dirname` as Hydra writes them."""

    # per process, shared by the loaders a joblib worker unpickles job after job
    composed: dict[tuple, DictConfig] = {}

    def __init__(self, loader: ConfigLoaderImpl):
        self.loader = loader
        self.parser = OverridesParser.create()

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def __reduce__(self):
        return SweepConfigLoader, (self.loader,)

    def load_sweep_config(self, master_config: DictConfig,
                          sweep_overrides: Sequence[str]) -> DictConfig:
        parsed = self.parser.parse_overrides(list(sweep_overrides))
        if any(o.is_hydra_override() for o in parsed):  # a job's own hydra.* keys: Hydra's way
            return self.loader.load_sweep_config(master_config, list(sweep_overrides))
        values, groups = split_overrides(parsed, self.loader.repository.group_exists)
        key = (master_config.hydra.job.config_name, *master_config.hydra.overrides.hydra,
               "--", *groups)
        if key not in self.composed:
            self.composed[key] = self.loader.load_sweep_config(master_config, list(groups))
        cfg = copy.deepcopy(self.composed[key])
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        cfg.hydra.overrides.task = [o.input_line for o in parsed]
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=parsed, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep,
            exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg


def unknown_keys(node: DictConfig, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Keys of a composed config that its schema (a dataclass) has no field for, each with the
    schema's keys at that level: `+optim.lrr=0.1` adds such a key, and `OmegaConf.to_object`
    drops it without a word. Free-form dict fields (a search space) take any key."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return []
    fields = [f.name for f in dataclasses.fields(schema)]
    found = []
    for key in node.keys():
        if key not in fields:
            found.append((f"{prefix}{key}", [f"{prefix}{name}" for name in fields]))
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            found += unknown_keys(child, f"{prefix}{key}.")
    return found


def check_known_keys(cfg: DictConfig) -> None:
    """Refuse a key the schema does not know, naming the closest known key (ConfigError)."""
    import difflib

    for key, known in unknown_keys(cfg):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"the keys here are {', '.join(known)}"
        raise ConfigError(f"{key}: no such key, so it would change nothing ({hint}); "
                          "`--cfg job` lists every key the command takes.")
