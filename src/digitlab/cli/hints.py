"""What a command tells its user besides bad input (cli.project.fail): its
output files written whole or not at all (a full disk leaves the earlier file, or none, and one
line — never a file cut short); and the commands and links it prints to paste, with the
interpreter that ran it (.venv/bin/python, not a `python` that may lack the project) and the UI
port `make ui` uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from digitlab.cli.project import fail, project_root
from digitlab.files import write_atomic

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


def runs_page(experiment_id: str) -> str:
    """The experiment's runs table, as a model-training experiment (not the GenAI overview)."""
    return f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"


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
