"""The schema revision this MLflow writes (its Alembic head), remembered per MLflow install.

MLflow finds the head by loading its ≈ 60 migration scripts (≈ 0.5 s) each time it opens a
SQLite store object, and digitlab's store check asks for it too; the answer only changes with
the installed MLflow, so it is kept in the cache folder under a key of MLflow's version and its
migration files' names. Read from there, the check needs no MLflow import, and MLflow's own
check reads it from there too (`install`)."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

from digitlab.data.cache import cache_root

_MLFLOW = Path(importlib.util.find_spec("mlflow").submodule_search_locations[0])
_VERSIONS = _MLFLOW / "store" / "db_migrations" / "versions"
_load_migrations = None  # MLflow's own function, kept by `install`


def _key() -> str:
    names = sorted(os.listdir(_VERSIONS)) if _VERSIONS.is_dir() else []
    listing = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    return f"{importlib.metadata.version('mlflow')}-{listing}"


@functools.cache
def schema_head() -> str:
    """The Alembic head revision of this MLflow's store schema."""
    remembered = cache_root() / "mlflow-schema" / f"{_key()}.txt"
    try:
        head = remembered.read_text().strip()
        if head:
            return head
    except OSError:
        pass
    install()
    head = _load_migrations()
    try:
        remembered.parent.mkdir(parents=True, exist_ok=True)
        partial = remembered.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(head)
        os.replace(partial, remembered)  # whole or absent, for a process reading it meanwhile
    except OSError:
        pass  # a read-only cache folder: found again by the next process
    return head


def install() -> None:
    """MLflow's schema check on opening a store reads the remembered head."""
    global _load_migrations
    import mlflow.store.db.utils as db_utils

    if db_utils._get_latest_schema_revision is not schema_head:
        _load_migrations = db_utils._get_latest_schema_revision
        # MLflow's _verify_schema looks the function up by this name on every store it opens
        db_utils._get_latest_schema_revision = schema_head
