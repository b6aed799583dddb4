"""A sweep's jobs as Hydra's basic sweeper expands them, each config once, and the check for keys
a schema does not know. Used by the pipelines only: it imports Hydra."""

from __future__ import annotations

import dataclasses
import itertools

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from digitlab.config import ConfigError, RunConfig


def expand_sweep(task_overrides: list[str]) -> tuple[list[list[str]], list[str]]:
    """The override list of every job, in the order Hydra's basic sweeper launches them (the
    product of each key's values; a key given twice keeps its first place and its last values),
    and the swept keys. An interval sweep, which the basic sweeper refuses, is a ConfigError."""
    parsed = OverridesParser.create().parse_overrides(task_overrides)
    values: dict[str, list[str]] = {}
    swept = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ConfigError(f"{override.input_line}: an interval has no list of values to "
                                  "sweep (search.py samples one); list the values (key=a,b,c) "
                                  "or give a range (key=range(0,3)).")
            swept.append(key)
            values[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            values[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*values.values())], swept


def distinct_jobs(jobs: list[list[str]],
                  checked: dict[tuple[str, ...], RunConfig]) -> list[list[str]]:
    """The jobs with each config once: a job whose overrides repeat an earlier job's
    (`seed=1,1`), or whose checked config equals an earlier job's (`model.hidden=32,[32]`, two
    spellings of one config, as `checked` holds them), is dropped, so one config is one run per
    sweep."""
    kept: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    configs: list[RunConfig] = []
    for job in jobs:
        config = checked.get(tuple(job))
        if tuple(job) in seen or (config is not None and config in configs):
            continue
        seen.add(tuple(job))
        if config is not None:
            configs.append(config)
        kept.append(job)
    return kept


def without_hydra_node(cfg: DictConfig) -> DictConfig:
    """A composition made with Hydra's node (return_hydra_config=True, which resolves
    ${hydra:…}), as the job sees it: without that node."""
    with open_dict(cfg):
        del cfg["hydra"]
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
        if OmegaConf.is_missing(node, key):
            continue
        child = node[key]
        if isinstance(child, DictConfig):
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
