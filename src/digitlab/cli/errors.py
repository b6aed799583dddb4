"""Bad input: one line on stderr, exit code 2; and a command's output files written whole or not
at all, so a full disk (or any write error) leaves the earlier file, or none, and one line with
exit 2 — never a file cut short."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from digitlab.files import write_atomic

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """One line on stderr and exit code 2: bad input, nothing was run."""
    print(f"digitlab: error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


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
