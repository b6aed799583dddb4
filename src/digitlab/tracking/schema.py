"""The schema revision this MLflow writes (its Alembic head), remembered per MLflow install.

MLflow finds the head by loading its ≈ 60 migration scripts (≈ 0.5 s) each time it opens a
SQLite store object, and digitlab's store check asks for it too; the answer only changes with
the installed MLflow, so it is kept in the cache folder under a key of MLflow's version and its
migration files' names, and MLflow's own check reads it from there."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import mlflow
import mlflow.store.db.utils as db_utils

from digitlab.data.cache import cache_root

_LOAD_MIGRATIONS = db_utils._get_latest_schema_revision
_VERSIONS = Path(db_utils.__file__).parents[1] / "db_migrations" / "versions"


def _key() -> str:
    names = sorted(os.listdir(_VERSIONS)) if _VERSIONS.is_dir() else []
    listing = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    return f"{mlflow.__version__}-{listing}"


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
    head = _LOAD_MIGRATIONS()
    try:
        remembered.parent.mkdir(parents=True, exist_ok=True)
        partial = remembered.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(head)
        os.replace(partial, remembered)  # whole or absent, for a process reading it meanwhile
    except OSError:
        pass  # a read-only cache folder: found again by the next process
    return head


# MLflow's _verify_schema looks the function up by this name on every store it opens
db_utils._get_latest_schema_revision = schema_head
