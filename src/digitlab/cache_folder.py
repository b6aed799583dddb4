"""The cache folder every layer below the command line may use: $DIGITLAB_CACHE, else
$XDG_CACHE_HOME/digitlab, else ~/.cache/digitlab (a `data.cache_dir` overrides it for data)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(cache_dir: str | None = None) -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "digitlab"
    return Path(cache_dir or os.environ.get("DIGITLAB_CACHE") or default)
