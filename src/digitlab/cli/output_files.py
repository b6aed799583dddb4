"""A command's output files written whole or not at all: each goes to a partial file beside it
and is renamed into place, so a full disk (or any write error) leaves the earlier file, or none,
and one line with exit 2 — never a file cut short."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from digitlab.cli.errors import fail
from digitlab.files import write_atomic


def refuse_folder(path: str | Path, key: str) -> None:
    """One line and exit 2 when the file `key` names is a folder."""
    if Path(path).is_dir():
        fail(f"{key}={path}: a folder; give the file to write, e.g. {key}="
             f"{Path(path) / 'out.csv'}")


def write_whole(path: str | Path, write: Callable[[Path], None], key: str) -> None:
    """`write(partial)` then the partial file renamed to `path`; on an error, no partial file
    is left and the command ends in one line naming `key`."""
    path = Path(path)
    refuse_folder(path, key)
    try:
        write_atomic(path, write)
    except OSError as exc:
        fail(f"{key}={path}: cannot write it ({exc.strerror or exc}); free some space on that "
             f"disk or give {key}= another place.")
