"""Commands and links printed for the user to paste: with the interpreter that ran this command
(.venv/bin/python, not a `python` that may lack the project) and the UI port `make ui` uses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from digitlab.cli.project import project_root

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
