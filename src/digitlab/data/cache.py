"""Parsed arrays cached as .npy files, memory-mapped on the next load, with their sha256; and
small derived arrays (a split's row indices) cached as .npz files under a key of all they
depend on.

The key is the sha256 of the source file's bytes, read on every load (≈ 0.06 s for a 76 MB
file): a file edited and given back its old size and modification time (`cp -p`, `rsync -t`,
`touch -r`) is parsed again, so the digest a run logs is that of the bytes it trained on. A file
is parsed from the very bytes its key was computed from, read once: a file replaced between
hashing and parsing cannot be cached under the other file's key. Files are
written whole (digitlab.files), so parallel jobs never read a half-written cache. A cache folder or file another user could write is neither read nor written
(digitlab.files).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from digitlab.files import cache_root, private_file, private_folder, write_atomic


def array_digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _folder(kind: str, cache_dir: str | None) -> Path | None:
    """The cache's folder for `kind`, or None where another user could write in it."""
    root = cache_root(cache_dir)
    return private_folder(root / kind, root)


def _cache_files(folder: Path, source: Path, key: str) -> tuple[Path, Path]:
    npy = folder / f"{source.name}.{key}.npy"
    return npy, npy.with_suffix(".sha256")


def cached_array(source: Path, parse: Callable[[Path, bytes], np.ndarray],
                 cache_dir: str | None = None) -> tuple[np.ndarray, str]:
    """(array, sha256 of its content) of `source`, parsed once and memory-mapped afterwards.
    `parse(path, raw)` parses the file's bytes `raw` (the path only names it in errors)."""
    source = Path(source).resolve()
    folder = _folder("arrays", cache_dir)
    if folder is None:
        array = parse(source, source.read_bytes())
        return array, array_digest(array)
    with open(source, "rb") as f:  # streamed: a cached file is never held in memory
        key = hashlib.file_digest(f, "sha256").hexdigest()[:32]
    npy, digest_file = _cache_files(folder, source, key)
    if npy.exists() and digest_file.exists() and private_file(npy) and private_file(digest_file):
        return np.load(npy, mmap_mode="r"), digest_file.read_text().strip()
    raw = source.read_bytes()  # the file may have changed since: key and array from these bytes
    npy, digest_file = _cache_files(folder, source, hashlib.sha256(raw).hexdigest()[:32])
    array = parse(source, raw)
    digest = array_digest(array)
    try:
        write_atomic(npy, lambda tmp: _save_npy(tmp, array))
        write_atomic(digest_file, digest)
    except OSError:  # a read-only cache only costs speed
        pass
    return array, digest


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a bare name
        np.save(f, array)


def cached_arrays(kind: str, key: str, compute: Callable[[], dict[str, np.ndarray]],
                  cache_dir: str | None = None) -> dict[str, np.ndarray]:
    """compute() once per `key`, which must name everything its arrays depend on; later calls
    read them back."""
    folder = _folder(kind, cache_dir)
    if folder is None:
        return compute()
    npz = folder / f"{key}.npz"
    try:
        if private_file(npz):
            with np.load(npz) as found:
                return {name: found[name] for name in found.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # none yet, or damaged
        pass
    arrays = compute()
    try:
        write_atomic(npz, lambda tmp: _save_npz(tmp, arrays))
    except OSError:  # a read-only cache only costs speed
        pass
    return arrays


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a bare name
        np.savez(f, **arrays)
