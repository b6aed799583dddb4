"""CPython's cyclic garbage collector held off while a process imports.

MLflow, SQLAlchemy, pandas, Hydra, scikit-learn and matplotlib leave ≈ 350,000 objects alive,
and the collector walks every one of them again at each full collection: ≈ 0.06 s each. A
`make run` sweep spent ≈ 0.5 s collecting, most of it in collections during its imports, which
leave little garbage. So a command holds the collector off until it has imported what it needs
(`hold`), then freezes what is alive — never scanned again — and collects as usual from there
(`resume`): what runs create is collected as before.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


def hold() -> None:
    """No collections from now until `resume`."""
    gc.disable()


def resume() -> None:
    """What is alive frozen out of every later collection, and collections back on; nothing to
    do if they were never held."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@contextmanager
def imports_held() -> Iterator[None]:
    """A block of imports without collections, what it leaves alive frozen after it."""
    hold()
    try:
        yield
    finally:
        resume()
