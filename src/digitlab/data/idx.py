"""Reader of the IDX format of the official MNIST and Fashion-MNIST files, gzip or raw.

Layout (big-endian): two zero bytes, a type byte (0x08 = unsigned byte), a byte with the number
of dimensions, one uint32 per dimension, then the data. Images have magic 2051 (3 dims), labels
2049 (1 dim).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from digitlab.data.errors import DataError

MAGIC = {"images": 2051, "labels": 2049}
FIX = "re-download the official file (or point data.root at the folder holding it)"


def _read_bytes(path: Path, raw: bytes | None) -> bytes:
    if raw is None:
        if not path.is_file():
            raise DataError(f"{path}: file not found; {FIX}.")
        raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic; the official files ship gzipped
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: the gzip stream is damaged ({exc}); {FIX}.") from None
    if not raw:
        raise DataError(f"{path}: the file is empty; {FIX}.")
    return raw


def read_idx(path: str | Path, kind: str, raw: bytes | None = None) -> np.ndarray:
    """The array stored in an IDX file of `kind` 'images' (n, rows, cols) or 'labels' (n,);
    from the file's bytes `raw` when given (read already), else read from `path`."""
    path = Path(path)
    raw = _read_bytes(path, raw)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header; {FIX}.")
    magic = int.from_bytes(raw[:4], "big")
    if magic != MAGIC[kind]:
        other = {v: k for k, v in MAGIC.items()}.get(magic)
        found = f"magic {magic} ({other})" if other else f"magic {magic}"
        raise DataError(f"{path}: expected IDX {kind} (magic {MAGIC[kind]}), found {found}; "
                        f"check which file is which, or {FIX}.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: the header is cut short ({len(raw)} bytes); {FIX}.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = np.prod(shape, dtype=np.int64)
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise DataError(f"{path}: file is {what}: header {shape} needs {expected} data bytes, "
                        f"found {found}; {FIX}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
