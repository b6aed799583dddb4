"""SQLite database URIs and the files they name, for every store digitlab opens (MLflow's runs,
Optuna's studies, the server's users): `sqlite:///<path>`, four slashes for an absolute path."""

from __future__ import annotations

from pathlib import Path

SQLITE = "sqlite:///"


def sqlite_path(uri: str | None) -> Path | None:
    """The file a SQLite URI names; None for any other URI (a server, PostgreSQL)."""
    return Path(uri.removeprefix(SQLITE)) if uri and uri.startswith(SQLITE) else None


def sqlite_uri(path: str | Path) -> str:
    return f"{SQLITE}{path}"
