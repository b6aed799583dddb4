"""Every command's input checked before anything runs: the command line, each job's config
composed and typed (a sweep's jobs as Hydra's grid expands them, each config once; keys a
schema does not know refused), the folders it writes and the store it opens; one line and exit 2
otherwise."""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict

from digitlab.cli import project
from digitlab.cli.project import conf_dir, fail, project_root
from digitlab.config import ConfigError, RunConfig, check_given_keys_act


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


def to_run_config(cfg: DictConfig) -> RunConfig:
    """The typed config; raises ConfigError naming key, value and what is allowed, or a key
    the schema does not have."""
    check_known_keys(cfg)
    return OmegaConf.to_object(cfg)


def refuse_unknown_keys(cfg: DictConfig) -> None:
    """A pipeline's config with a key its schema lacks (`+typo=1`): one line and exit 2."""
    try:
        check_known_keys(cfg)
    except ConfigError as exc:
        fail(str(exc))


def check_writable(folder: str | Path, key: str) -> None:
    """One line and exit 2 unless `folder` can be created and written (a read-only working
    folder, a full or read-only mount), before anything is run."""
    import tempfile

    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".digitlab-write-check-"))
    except OSError as exc:
        fail(f"{key}={folder}: cannot write in {existing} ({exc.strerror}); run the command from "
             f"a writable folder or set {key}= to one.")


RAY_LAUNCHER = "hydra/launcher=ray_cluster"  # a sweep on a Ray cluster: its token checked first

# keys renamed so that every pipeline names the store as train.py does: the old spelling is
# refused with the new one
RENAMED_KEYS = {"uri": "tracking.uri", "mlflow_experiment": "tracking.experiment"}

# recipes renamed so that "seed" means only the random seed
RENAMED_RECIPES = {"seed-blog": "blog-network", "seed-blog-fixed": "blog-network-fixed"}


def refuse_renamed_keys(argv: list[str]) -> None:
    for arg in argv:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        new = RENAMED_KEYS.get(key)
        if new:
            fail(f"{key}= is now {new}= in every pipeline: {new}={value}")
        for old in value.split(","):
            if key == "experiment" and old in RENAMED_RECIPES:
                fail(f"experiment={old} is now experiment={RENAMED_RECIPES[old]}")


def one_line(exc: BaseException) -> str:
    """Hydra's multi-line message and its cause (which names the key and type) as one line."""
    noise = ("full_key", "object_type", "reference_type", "See https", "Set the environment",
             "Config search path", "provider=")
    parts = []
    while exc is not None:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        parts += [line for line in lines if not line.startswith(noise) and line not in parts]
        exc = exc.__cause__
    return " ".join(parts)


# Hydra's and OmegaConf's messages for the commonest slips, read so that the line says key,
# value, what is allowed and the fix
UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'")
BAD_VALUE = re.compile(r"Error merging override ([^=\s]+)=(\S*)")
TYPE_NAMES = {"Float": "a number (0.1, 1e-3)", "Integer": "a whole number",
              "Boolean": "true or false", "bool": "true or false"}
WANTED_TYPE = re.compile(r"could not be converted to (\w+)|is not a valid (bool)")
MISSING_OPTION = re.compile(r"Could not find '([^/']+)/([^']+)'")


def group_options(group: str) -> list[str]:
    """What `group=` may be: the files of conf/<group>/ (the base_<group> schemas they build on
    are not options)."""
    return sorted(f.stem for f in (conf_dir() / group).glob("*.yaml"))


def _flat_keys(node, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        if isinstance(value, DictConfig):
            keys += _flat_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def no_such_key(key: str, value: str, config_name: str) -> str:
    """The one line for a key the config lacks, with the closest one it has."""
    import difflib

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # within a composition of the jobs
        known = _flat_keys(compose(config_name=config_name))
    else:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            known = _flat_keys(compose(config_name=config_name))
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}?" if close else "`--cfg job` lists every key"
    return f"{key}={value}: no such key, so it would change nothing ({hint})"


# what Hydra's grammar takes as a key: a word of ASCII letters, digits and these, a group's path
KEY = re.compile(r"[A-Za-z0-9_.\-/@$]+")


def refuse_unreadable_keys(argv: list[str], config_name: str) -> None:
    """A key Hydra's lexer cannot read (a non-ASCII letter, a space) is no key of the config:
    said as such, not as a value to quote."""
    for arg in argv:
        key, equals, value = arg.lstrip("+~").partition("=")
        if equals and not arg.startswith("-") and not KEY.fullmatch(key):
            fail(no_such_key(key, value, config_name))


def explain(exc: BaseException, argv: list[str], config_name: str) -> str:
    """The one line for a Hydra error: a key the config lacks (with the closest one), a value
    of the wrong type, an option a group lacks; Hydra's own words otherwise."""
    import difflib

    text = one_line(exc)
    given = dict(a.lstrip("+~").split("=", 1) for a in argv if "=" in a)
    unknown = UNKNOWN_KEY.search(text)
    if unknown:
        return no_such_key(unknown.group(1), given.get(unknown.group(1), "…"), config_name)
    bad, wanted = BAD_VALUE.search(text), WANTED_TYPE.search(text)
    if bad and wanted:
        key, value = bad.groups()
        kind = TYPE_NAMES.get(wanted.group(1) or wanted.group(2), "another type")
        return f"{key}={value}: expected {kind}; give {key}= such a value"
    missing = MISSING_OPTION.search(text)
    if missing:
        group, option = missing.groups()
        options = group_options(group)
        close = difflib.get_close_matches(option, options, n=1)
        return (f"{group}={option}: no such option (conf/{group}/ has {', '.join(options)})"
                + (f"; did you mean {group}={close[0]}?" if close else ""))
    return text + _quoting_hint(exc, argv)


def refuse_schema_options(argv: list[str]) -> None:
    """`data=base_data` would compose the bare schema, whose defaults are another dataset's:
    refused, naming the options."""
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        if key and (conf_dir() / key).is_dir() and any(
                v.startswith("base_") for v in value.split(",")):
            fail(f"{key}={value}: base_{key} is the schema the {key} options build on, not an "
                 f"option; choose one of {', '.join(group_options(key))}")


def _quoting_hint(exc: BaseException, argv: list[str]) -> str:
    """Hydra's grammar reads a bare value of plain ASCII without '=': a space splits the
    override in two for the shell, a non-ASCII character stops the lexer, and an '=' in a value
    (a config of compare.py's a=, an override in search.py's list) ends the parse."""
    text = str(exc)
    if "mismatched input '='" in text or re.search(r"no viable alternative at input '[^']*=",
                                                    text):
        key, value = next((a.split("=", 1) for a in argv if a.count("=") > 1), ("a", "hidden=64"))
        items = value.strip("[]").split(",")
        quoted = (f"[{','.join(repr(i.strip()) for i in items)}]" if value.startswith("[")
                  else repr(value))
        return (" — a value that holds '=' must be quoted for Hydra, inside the shell's quotes: "
                f"\"{key}={quoted}\"")
    if "LexerNoViableAltException" in text or "missing EQUAL" in text or "no viable" in text:
        return (" — a value with spaces or non-ASCII characters must be quoted for Hydra, inside "
                "the shell's quotes: \"data.root='/path/with space/ü'\"")
    return ""


def preflight(argv: list[str], config_name: str) -> dict[tuple[str, ...], RunConfig]:
    """Compose and check the config of every job the command line asks for, before Hydra starts
    anything: a typo, a wrong type, an unknown option or a bad value gets one line and exit 2.
    Returns the checked configs by their jobs' override lists (none for --help, --cfg …)."""
    from hydra.errors import HydraException

    refuse_renamed_keys(argv)
    refuse_unreadable_keys(argv, config_name)
    refuse_schema_options(argv)
    flags = [a for a in argv if a.startswith("-")]
    if any(f not in ("-m", "--multirun") for f in flags):
        return {}  # --help, --cfg, -cn …: Hydra's own business
    if RAY_LAUNCHER in argv:
        from digitlab.cli.ray_auth import prepare_ray_auth

        prepare_ray_auth()
    task = [a for a in argv if not a.startswith("-")
            and not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        jobs, swept = expand_sweep(task)
    except ConfigError as exc:
        fail(str(exc))
    except HydraException as exc:
        fail(explain(exc, task, config_name))
    if swept and not flags:
        fail(f"{' '.join(swept)}: a list of values needs -m to sweep over them "
             f"({project.pipeline('train.py')} -m …), or quote a single value.")
    for value in [a.split("=", 1)[1] for a in argv if a.startswith("hydra.launcher.n_jobs=")]:
        if not value.lstrip("-").isdigit() or int(value) == 0:
            fail(f"hydra.launcher.n_jobs={value}: expected the number of parallel jobs, an "
                 "integer ≥ 1, or a negative one as joblib counts (-1 every core, -2 all but one).")
    key = "hydra.sweep.dir" if flags else "hydra.run.dir"
    given = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith(f"{key}=")]
    # the folder Hydra creates first; conf/train.yaml's default lies under outputs/
    check_writable(given[0].split("${")[0] if given else "outputs", key)
    checked = _check_jobs(jobs, config_name, sweeping=bool(flags))
    refuse_mixed_experiments(list(checked.values()))
    check_pruning([a for a in argv if a.startswith("hydra.sweeper.")], checked, bool(flags))
    return checked


def check_pruning(given: list[str], checked: dict[tuple[str, ...], RunConfig],
                  sweeping: bool) -> None:
    """The sweeper's prune keys (conf/hydra/sweeper/digitlab.yaml) as the command line sets
    them, checked against the sweep's configs (digitlab.halving)."""
    if not given:
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from digitlab import halving

    configs = list(checked.values())
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            node = compose(config_name="train", overrides=given,
                           return_hydra_config=True).hydra.sweeper
        plan = halving.Halving(node.prune_eta, node.prune_min_epochs, node.prune_metric)
        halving.check(node.prune, plan, {c.trainer.epochs for c in configs},
                      sweeping, all(c.tracking.enabled for c in configs),
                      all(c.tracking.skip_finished for c in configs),
                      all(c.data.val_mode != "none" for c in configs))
    except ConfigError as exc:
        fail(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:
        fail(explain(exc, given, "train"))


def _check_jobs(jobs: list[list[str]], config_name: str,
                sweeping: bool) -> dict[tuple[str, ...], RunConfig]:
    """Each job composed as Hydra will compose it (its ${hydra:job.num} too) and typed."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    checked: dict[tuple[str, ...], RunConfig] = {}
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        for number, overrides in enumerate(jobs):
            where = f" (in the sweep job {' '.join(overrides)})" if len(jobs) > 1 else ""
            try:
                composed = compose(config_name=config_name, overrides=overrides,
                                   return_hydra_config=True)
                as_the_job_sees_it(composed, number if sweeping else None)
                config = to_run_config(without_hydra_node(composed))
                check_given_keys_act(config, [o.split("=", 1)[0].lstrip("+~") for o in overrides])
                checked[tuple(overrides)] = config
            except ConfigError as exc:
                fail(f"{exc}{where}")
            except (HydraException, OmegaConfBaseException) as exc:
                fail(explain(exc, overrides, config_name) + where)
    return checked


def refuse_mixed_experiments(configs: list[RunConfig]) -> None:
    """A sweep's runs and its parent run share one MLflow experiment: a sweep whose datasets
    would go to experiments of their own (digitlab-<data.name>) names one for all, or is split."""
    names = sorted({c.tracking.experiment for c in configs if c.tracking.enabled})
    if len(names) > 1:
        fail(f"this sweep's runs would go to {len(names)} MLflow experiments "
             f"({', '.join(names)}: by default each dataset has its own); a sweep is recorded "
             "in one: add tracking.experiment=<name> to put them all there, or run one sweep "
             "per dataset.")


def as_the_job_sees_it(composed: DictConfig, job_number: int | None) -> None:
    """Hydra's node of the job set as the job will have it, so that ${hydra:job.num} and the
    other ${hydra:…} values resolve as in the job (a sweep numbers its jobs from 0)."""
    import copy

    from hydra.core.hydra_config import HydraConfig

    if job_number is not None:
        with open_dict(composed):
            composed.hydra.job.num = job_number
    HydraConfig.instance().set_config(copy.deepcopy(composed))


def check_command_line(argv: list[str], config_name: str) -> None:
    """A pipeline's own config composed once before Hydra runs it: an unknown key, a wrong type
    or a bad value gets one line and exit 2 instead of Hydra's multi-line report."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    refuse_renamed_keys(argv)
    refuse_unreadable_keys(argv, config_name)
    refuse_schema_options(argv)
    if any(a.startswith("-") for a in argv):
        return  # --help, --cfg, -sc …: Hydra's own business
    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            composed = without_hydra_node(compose(config_name=config_name, overrides=overrides,
                                                  return_hydra_config=True))
        check_known_keys(composed)
        OmegaConf.to_object(composed)  # the schema's own checks (tracking.uri without a login)
    except ConfigError as exc:
        fail(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:
        fail(explain(exc, overrides, config_name))


def prepare_store(uri: str, experiment: str) -> str:
    """The store checked and ready, or one line and exit code 2 before anything trains."""
    from digitlab.tracking.store import StoreError, prepare_store

    def creating() -> None:  # MLflow's tables and migrations: the longest silent step
        print(f"creating the MLflow store {uri} (a few seconds, once)", flush=True)

    try:
        return prepare_store(uri, experiment, on_create=creating)
    except StoreError as exc:
        fail(str(exc))


def checked_store(configured_uri: str | None, reap: bool = True) -> str:
    """The tracking URI of an existing, readable store, or one line and exit code 2: a command
    that reads runs never creates a store (a typo in tracking.uri would make an empty one).
    The runs of dead processes are marked KILLED first (`reap`), as every command that opens a
    store does, so no command shows or joins a dead run as RUNNING."""
    from digitlab.files import sqlite_path
    from digitlab.tracking.store import (
        StoreError,
        check_store,
        mark_dead_runs_killed,
        open_store,
        resolve_uri,
        uri_key,
    )

    uri = resolve_uri(configured_uri, project_root())
    db = sqlite_path(uri)
    if db is not None and (not db.is_file() or db.stat().st_size == 0):
        fail(f"{uri_key(uri)}={uri}: no MLflow store there ({db} "
             f"{'is empty' if db.is_file() else 'does not exist'}); check the path, or train "
             f"first ({project.pipeline('train.py')}), which creates it.")
    try:
        check_store(uri)
        client = open_store(uri)
    except StoreError as exc:
        fail(str(exc))
    if reap:
        mark_dead_runs_killed(client)
    return uri
