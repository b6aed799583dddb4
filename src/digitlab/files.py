"""A file written whole or not at all, the one way every file a run, a sweep or a command
writes for others to read: a reader (another job, a later command) sees the earlier file or
the new one, never one cut short by a full disk or a stop. And the file a SQLite URI names, for
every store digitlab opens (MLflow's runs, Optuna's studies, the server's users):
`sqlite:///<path>`, four slashes for an absolute path. And a name as a safe folder name."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Callable


def write_atomic(path: str | Path, data: str | bytes | Callable[[Path], None]) -> None:
    """`data` (text, bytes, or a function that writes the file it is given) written to a partial
    file beside `path`, then renamed into place; on an error the partial file is removed and
    the error raised."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        if callable(data):
            data(partial)
        elif isinstance(data, bytes):
            partial.write_bytes(data)
        else:
            partial.write_text(data, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


SQLITE = "sqlite:///"


def sqlite_path(uri: str | None) -> Path | None:
    """The file a SQLite URI names; None for any other URI (a server, PostgreSQL)."""
    return Path(uri.removeprefix(SQLITE)) if uri and uri.startswith(SQLITE) else None


def sqlite_uri(path: str | Path) -> str:
    return f"{SQLITE}{path}"


def folder_name(name: str) -> str:
    """`name` (an experiment's, a run's) as one folder inside another: letters, digits, `.`,
    `-` and `_` kept, anything else `_`, never `.` or `..` (`../../x` cannot leave its folder),
    at most 200 characters (a file system takes 255)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:200]
    return safe or "_"
