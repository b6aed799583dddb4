"""The schema revision this MLflow writes (its Alembic head), remembered per MLflow install.

The head is read from MLflow's migration scripts with Alembic's public API (≈ 60 scripts,
≈ 0.5 s); the answer only changes with the installed MLflow, so it is kept in the cache folder
under a key of MLflow's version and its migration files' names, and digitlab's check of a store
at the door (store.check_store) needs no MLflow import."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

from digitlab.cache_folder import cache_root, private_file, private_folder

_MLFLOW = Path(importlib.util.find_spec("mlflow").submodule_search_locations[0])
_MIGRATIONS = _MLFLOW / "store" / "db_migrations"


def _key() -> str:
    versions = _MIGRATIONS / "versions"
    names = sorted(os.listdir(versions)) if versions.is_dir() else []
    listing = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    return f"{importlib.metadata.version('mlflow')}-{listing}"


def _read_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(_MIGRATIONS)).get_current_head()


@functools.cache
def schema_head() -> str:
    """The Alembic head revision of this MLflow's store schema."""
    folder = private_folder(cache_root() / "mlflow-schema", cache_root())
    if folder is None:  # a folder others can write: its answer is not trusted
        return _read_head()
    remembered = folder / f"{_key()}.txt"
    try:
        head = remembered.read_text().strip() if private_file(remembered) else ""
        if head:
            return head
    except OSError:
        pass
    head = _read_head()
    try:
        partial = remembered.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(head)
        os.replace(partial, remembered)  # whole or absent, for a process reading it meanwhile
    except OSError:
        pass  # a read-only cache folder: found again by the next process
    return head
