"""The bottom of the pipelines' glue: bad input's one line and exit code 2; where the project is,
what the code is, what every command registers with Hydra and OmegaConf before it composes a
config, and the settings a command's process starts with. Importing it changes nothing outside
it (the registrations aside).

What a command tells its user besides bad input: its output files written whole or not at all
(a full disk leaves the earlier file, or none, and one line — never a file cut short); and the
commands and links it prints to paste, with the interpreter that ran it (.venv/bin/python, not a
`python` that may lack the project) and the UI port `make ui` uses."""

from __future__ import annotations

import functools
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from digitlab import tags as tag
from digitlab.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrackingConfig,
    TrainerConfig,
)
from digitlab.files import write_atomic
from digitlab.tracking.store import SERVER_BACKOFF, SERVER_RETRIES

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """One line on stderr and exit code 2: bad input, nothing was run."""
    print(f"digitlab: error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def is_project(folder: Path) -> bool:
    return (folder / "conf" / "train.yaml").is_file()


PROJECT_ENV = "DIGITLAB_PROJECT"  # the checkout, where a worker cannot find it (a Ray cluster's)


# an editable install (pip install -e .): src/digitlab/cli/project.py → the checkout
INSTALLED_CHECKOUT = Path(__file__).resolve().parents[3]


def find_project_root(script: str | None, working_folder: Path,
                      installed: Path = INSTALLED_CHECKOUT) -> Path:
    """The checkout a command belongs to: $DIGITLAB_PROJECT (a Ray worker's, from
    conf/hydra/launcher/ray_cluster.yaml), the folder above the command's script
    (<project>/pipelines/train.py), the working folder, else the checkout of an editable
    install; one line and exit 2 where none is a project."""
    candidates = [Path(os.environ[PROJECT_ENV])] if os.environ.get(PROJECT_ENV) else []
    if script:
        candidates.append(Path(script).resolve().parent.parent)
    candidates += [working_folder.resolve(), installed]
    for folder in candidates:
        if is_project(folder):
            return folder
    fail(f"{' nor '.join(map(str, dict.fromkeys(candidates)))}: not a digitlab project (no "
         "conf/train.yaml); run the pipelines of a checkout (python <checkout>/pipelines/"
         "train.py) or run the command from the checkout's folder.")


# what a command's process starts with, where the user has not set it: MLflow's INFO lines
# (creating a store's tables, validating each model's input example) say nothing a user acts on;
# an offline machine must not wait on telemetry; no progress bars in job logs; no MLflow "View
# run" lines (digitlab prints its own links); a tracking server that stops answering is waited
# for ≈ 1 min a request (tracking.store.SERVER_RETRIES), one that hangs 30 s an attempt
PROCESS_DEFAULTS = {"MLFLOW_LOGGING_LEVEL": "WARNING", "MLFLOW_DISABLE_TELEMETRY": "true",
                    "DO_NOT_TRACK": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(SERVER_RETRIES),
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(SERVER_BACKOFF),
                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


def prepare_process() -> None:
    """A command's settings, applied by its entry point before MLflow is imported (and by each
    job, which may run in a worker that did not inherit them); a value the user set is kept."""
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # nor do the INFO lines of Alembic, MLflow's schema migrator ("setup plugin …" when a store
    # is created): the commands' logging (conf/hydra/job_logging) shows INFO
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from digitlab.tracking.store import report_store_errors_once

    report_store_errors_once()


@functools.cache  # a process belongs to one checkout
def project_root() -> Path:
    """The command's checkout: its script is argv[0]; a test runner or notebook is found by its
    working folder."""
    return find_project_root(sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else None,
                             Path.cwd())


def conf_dir() -> Path:
    return project_root() / "conf"


log = logging.getLogger("digitlab")


def register_configs() -> None:
    """The schemas in Hydra's ConfigStore: conf/ files build on them (`defaults: [base_model]`)."""
    store = ConfigStore.instance()
    store.store(name="base_run", node=RunConfig)
    for group, schema in (("data", DataConfig), ("model", ModelConfig), ("optim", OptimConfig),
                          ("trainer", TrainerConfig), ("tracking", TrackingConfig)):
        store.store(group=group, name=f"base_{group}", node=schema)


def config_choices() -> str:
    """The config groups of conf/ and their options, as `--help` lists them: without the
    schemas registered as base_<group> and without the recipe families experiments build on."""
    lines = []
    for group in sorted(p for p in conf_dir().iterdir() if p.is_dir()
                        and p.name not in ("hydra", "recipe")):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        lines.append(f"{group.name}: {', '.join(options)}")
    return "\n".join(lines) + "\n"


register_configs()
# ${pid:} in conf/train.yaml: two sweeps started in the same microsecond still get two folders
OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)
# ${digitlab_choices:} in conf/train.yaml's help
OmegaConf.register_new_resolver("digitlab_choices", config_choices, replace=True)
# ${digitlab_project:} in conf/hydra/launcher/ray_cluster.yaml: the checkout, for Ray's workers
OmegaConf.register_new_resolver("digitlab_project", lambda: str(project_root()), replace=True)


def key_descriptions() -> str:
    """Every key train.py takes and what it does, from the schemas' comments."""
    from digitlab.cli.key_help import key_lines

    text = "\n".join(key_lines(RunConfig, leave_out=("published", "experiment_id"))) + "\n"
    return text.replace("$", "$$")  # Hydra fills its help template with string.Template


# ${digitlab_keys:} in conf/train.yaml's help
OmegaConf.register_new_resolver("digitlab_keys", key_descriptions, replace=True)


@functools.cache  # once per process: the code a process runs is the code it imported
def git_state() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=project_root(), capture_output=True, text=True)
        except OSError:  # no git on this machine: the run is logged as commit "unknown"
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {tag.GIT_COMMIT: commit or "unknown", tag.GIT_DIRTY: str(bool(dirty)).lower()}


UI_PORT = "5000"  # make ui's default; UI_PORT=… in the environment moves both


def _pasteable(path: Path) -> str:
    """`path` relative to the working folder where it lies inside it, else whole."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def python() -> str:
    return _pasteable(Path(sys.executable))


def pipeline(command: str) -> str:
    """`<python> pipelines/<command>`: 'rerun.py run_id=…' as it runs from here."""
    return f"{python()} {_pasteable(project_root() / 'pipelines')}/{command}"


def store_arg(uri: str) -> str:
    """What a printed command adds to act on the store `uri`: nothing for the project's own
    store, else its `tracking.uri=…` (quoted for the shell)."""
    from digitlab.tracking.store import default_uri

    return "" if uri == default_uri(project_root()) else " " + shlex.quote(f"tracking.uri={uri}")


def mlflow() -> str:
    """The mlflow command installed beside the interpreter."""
    return _pasteable(Path(sys.executable).parent / "mlflow")


def ui_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('UI_PORT', UI_PORT)}"


def ui_page(uri: str, page: str) -> str:
    """How to open `page` (#/experiments/…) of the store `uri` in the MLflow UI: the server's
    own address, `make ui` for the project's store, `mlflow ui` for another file."""
    from digitlab.tracking.store import default_uri

    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/{page}"
    if uri == default_uri(project_root()):
        return f"make ui, then {ui_url()}/{page}"
    return f"{mlflow()} ui --backend-store-uri {uri}, then its /{page}"


def refuse_output(path: str | Path, key: str, reads: Sequence[str | Path] = ()) -> None:
    """One line and exit 2 when the file `key` names is a folder, or is one of the files the
    command `reads` (by any spelling: a relative path, a symlink, a hard link): an output never
    replaces an input."""
    path = Path(path)
    if path.is_dir():
        fail(f"{key}={path}: a folder; give the file to write, e.g. {key}={path / 'out.csv'}")
    for source in map(Path, reads):
        same = (path.resolve() == source.resolve()
                or path.exists() and source.exists() and os.path.samefile(path, source))
        if same:
            fail(f"{key}={path}: that is the file this command reads ({source}); writing it would "
                 f"replace its input; give {key}= another file.")


def write_whole(path: str | Path, write: Callable[[Path], None], key: str) -> None:
    """`write(partial)` then the partial file renamed to `path`; on an error, no partial file
    is left and the command ends in one line naming `key`."""
    path = Path(path)
    refuse_output(path, key)
    try:
        write_atomic(path, write)
    except OSError as exc:
        fail(f"{key}={path}: cannot write it ({exc.strerror or exc}); free some space on that "
             f"disk or give {key}= another place.")
