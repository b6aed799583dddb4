"""A file written whole or not at all, the one way every file a run, a sweep or a command
writes for others to read: a reader (another job, a later command) sees the earlier file or
the new one, never one cut short by a full disk or a stop. And the file a SQLite URI names, for
every store digitlab opens (MLflow's runs, Optuna's studies, the server's users):
`sqlite:///<path>`, four slashes for an absolute path. And a name as a safe folder name.

The cache folder every layer below the command line may use: $DIGITLAB_CACHE, else
$XDG_CACHE_HOME/digitlab, else ~/.cache/digitlab (a `data.cache_dir` overrides it for data).
A cache is trusted only where the user alone can write: a folder another user can write could
hold a planted file (a split whose test rows are training rows, reported under the same config
hash and data digest). Folders are made mode 700; a folder or file that is not the user's own,
or that others can write, is not used (the work is done again, uncached) and named once in a
warning with its fix."""

from __future__ import annotations

import functools
import logging
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


log = logging.getLogger("digitlab")


def cache_root(cache_dir: str | None = None) -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "digitlab"
    return Path(cache_dir or os.environ.get("DIGITLAB_CACHE") or default)


def _fault(path: Path) -> str | None:
    """Why another user could change `path` (a symlink is judged by what it points to), or
    None."""
    found = os.stat(path)
    if found.st_uid != os.getuid():
        return f"owned by user id {found.st_uid}, not by you"
    if found.st_mode & 0o022:
        return f"writable by other users (mode {found.st_mode & 0o777:o})"
    return None


@functools.cache
def _warn(path: Path, fault: str) -> None:
    log.warning("the cache %s is %s, so it is not used; make it yours alone (chmod go-w %s) or "
                "set DIGITLAB_CACHE to a folder of your own", path, fault, path)


def private_folder(folder: Path, root: Path | None = None) -> Path | None:
    """`folder` (inside the cache `root`, itself by default), made mode 700 where missing, if it
    and every folder from `root` down to it only the user can write; else None."""
    root = Path(root or folder)
    chain = [root / part for part in reversed(folder.relative_to(root).parents)] + [folder]
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        for level in chain:
            if not level.exists():
                level.mkdir(mode=0o700, exist_ok=True)
        for level in chain:
            fault = _fault(level)
            if fault:
                _warn(level, fault)
                return None
    except OSError:  # a read-only or vanished cache only costs speed
        return folder if all(level.is_dir() and not _fault(level) for level in chain) else None
    return folder


def private_file(path: Path) -> bool:
    """Whether `path` is a file only the user can change."""
    try:
        fault = _fault(path)
    except OSError:
        return False
    if fault:
        _warn(path, fault)
    return fault is None
