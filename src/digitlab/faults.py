"""Faults of the machine and of the tracking store, told in one line.

MLflow, SQLAlchemy, requests and shutil report a full disk, a locked SQLite file or a tracking
server that stopped answering as multi-line exceptions, wrapped one in another. `describe` finds
the fault in the chain and says what it is and what to do, so a run ends with that line rather
than a traceback. Importing this module imports neither MLflow nor SQLAlchemy.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from digitlab.files import sqlite_path


@dataclass(frozen=True)
class Fault:
    kind: str  # disk_full | store_locked | server_gone | store_gone
    line: str


# how long MLflow's SQLite connections wait for a lock (PRAGMA busy_timeout = 20000)
MLFLOW_BUSY_SECONDS = 20.0
# fragments of the messages each fault shows, from SQLite, SQLAlchemy, urllib3 and MLflow
DISK_FULL = ("database or disk is full", "No space left on device")
LOCKED = ("database is locked",)
# SQLite on a store file deleted while it was open: its connections can only read the old inode,
# and a new connection finds an empty file
FILE_GONE = ("attempt to write a readonly database", "no such table")
SERVER_GONE = ("Max retries exceeded", "Connection refused", "Failed to establish a new connection",
               "RemoteDisconnected", "Read timed out", "ConnectionError", "ConnectTimeout",
               "Connection broken", "IncompleteRead")  # the last two: killed mid-answer


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _sqlite_file_gone(store: str | None) -> bool:
    path = sqlite_path(store)
    return path is not None and (not path.exists() or path.stat().st_size == 0)


def describe(exc: BaseException, store: str | None = None) -> Fault | None:
    """The machine or store fault behind `exc`, or None when it is none of these."""
    where = f" ({store})" if store else ""
    for link in _chain(exc):
        text = str(link)
        if any(f in text for f in FILE_GONE) and _sqlite_file_gone(store):
            return Fault("store_gone", f"the store's file{where} was deleted or emptied while "
                                       "the command ran; restore it from a backup, or start "
                                       "again into a new store (tracking.uri=…)")
        if (isinstance(link, OSError) and link.errno == errno.ENOSPC) or any(
                f in text for f in DISK_FULL):
            path = getattr(link, "filename", None)
            device = f" of {path}" if path else where
            return Fault("disk_full", f"no space left on the device{device}; free some space "
                                      "and run it again")
        if any(f in text for f in LOCKED):
            return Fault("store_locked", f"the tracking store{where} was locked by another "
                                         f"process for more than {MLFLOW_BUSY_SECONDS:g} s; wait "
                                         "for it to finish (or stop it) and run it again")
        if any(f in text for f in SERVER_GONE):
            return Fault("server_gone", f"the tracking server{where} stopped answering (MLflow "
                                        "retried each request for ≈ 10 s); restart it and run "
                                        "the command again: finished runs are skipped")
    return None
