"""Named datasets: digits (ships with scikit-learn), mnist and fashion_mnist (official IDX files),
kaggle_csv (the blog network's Kaggle "Digit Recognizer" train.csv)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from digitlab.config import DataConfig
from digitlab.data.cache import array_digest, cached_array, cached_arrays
from digitlab.data.errors import DataError
from digitlab.files import cache_root, private_folder

log = logging.getLogger(__name__)

IDX_FILES = {  # part → official file name (each may also be found without .gz)
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
OPENML_NAMES = {"mnist": "mnist_784", "fashion_mnist": "Fashion-MNIST"}


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # raw pixels, one image per row
    y_train: np.ndarray
    x_test: np.ndarray | None  # None where the dataset has no official test set
    y_test: np.ndarray | None
    pixel_max: float  # the largest possible pixel value (16 for digits, 255 otherwise)
    digest: str  # sha256 of the pixel and label arrays
    source: str
    image_shape: tuple[int, int]


def _load_digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits  # ≈ 1.3 s to import: done once per scikit-learn

    x, y = load_digits(return_X_y=True)
    return {"x": x.astype(np.uint8), "y": y.astype(np.int64)}  # pixels 0–16, labels 0–9


def load_digits_dataset(cfg: DataConfig) -> Dataset:
    arrays = cached_arrays("digits", f"scikit-learn-{importlib.metadata.version('scikit-learn')}",
                           _load_digits, cfg.cache_dir)
    x, y = arrays["x"], arrays["y"]
    return Dataset("digits", x, y, None, None, 16.0, array_digest(x, y),
                   "sklearn.datasets.load_digits", (8, 8))


def _find_idx(root: Path, name: str) -> Path | None:
    stem = name.removesuffix(".gz")
    for candidate in (name, stem, stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / candidate).is_file():
            return root / candidate
    return None


def _missing_message(name: str, root: Path | None) -> str:
    files = ", ".join(IDX_FILES.values())
    where = (f"the official IDX files are not in {root}" if root else
             "data.root is not set, so digitlab does not know where its official IDX files are")
    hint = ("install them with `apt-get install dataset-fashion-mnist` (files land in "
            f"{FASHION_DEBIAN_ROOT}) or " if name == "fashion_mnist" else "")
    return (f"data={name}: {where}: expected {files} (gzipped or not). "
            f"Fix: {hint}put the four files in one folder and pass data.root=/that/folder, "
            "or set data.download=true to fetch them from OpenML (needs internet).")


def _load_idx_folder(name: str, root: Path, cfg: DataConfig) -> Dataset:
    from digitlab.data.idx import read_idx

    paths = {part: _find_idx(root, file) for part, file in IDX_FILES.items()}
    missing = [IDX_FILES[p] for p, path in paths.items() if path is None]
    if missing:
        raise DataError(_missing_message(name, root) + f" Missing: {', '.join(missing)}.")
    arrays, digests = {}, []
    for part, path in paths.items():
        kind = part.split("_")[1]
        array, digest = cached_array(path, lambda p, raw, k=kind: read_idx(p, k, raw), cfg.cache_dir)
        arrays[part] = array
        digests.append(digest)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        where = paths[f"{split}_images"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{where}: expected images of 28×28 pixels, found shape "
                            f"{images.shape}; use the official {name} files.")
        if len(images) != len(labels):
            raise DataError(f"{where}: {len(images)} images but {len(labels)} labels in "
                            f"{paths[f'{split}_labels']}; the two files must belong together.")
        if len(labels) and labels.max() > 9:
            raise DataError(f"{paths[f'{split}_labels']}: label {int(labels.max())} is outside "
                            "0–9; use the official label file.")
    digest = hashlib.sha256("".join(digests).encode()).hexdigest()  # of the four array digests
    return Dataset(name, arrays["train_images"].reshape(-1, 784), arrays["train_labels"],
                   arrays["test_images"].reshape(-1, 784), arrays["test_labels"], 255.0,
                   digest, str(root), (28, 28))


def _download_openml(name: str, cfg: DataConfig) -> Dataset:
    import tempfile

    from sklearn.datasets import fetch_openml

    root = cache_root(cfg.cache_dir)
    data_home = private_folder(root / "openml", root)
    log.info("fetching %s from OpenML into %s", OPENML_NAMES[name], data_home or "a temporary folder")
    try:
        with tempfile.TemporaryDirectory(prefix="digitlab-openml-") as scratch:
            x, y = fetch_openml(OPENML_NAMES[name], version=1, return_X_y=True, as_frame=False,
                                data_home=str(data_home or scratch), parser="liac-arff")
    except Exception as exc:  # offline: URLError, socket errors, HTTP errors
        raise DataError(f"{name}: the OpenML download failed ({type(exc).__name__}: {exc}). "
                        + _missing_message(name, Path(cfg.root) if cfg.root else None)) from None
    x, y = np.asarray(x, dtype=np.uint8), np.asarray(y).astype(np.int64)
    # OpenML keeps the official order: the first 60,000 rows are the training set
    return Dataset(name, x[:60000], y[:60000], x[60000:], y[60000:], 255.0,
                   array_digest(x, y), f"openml:{OPENML_NAMES[name]}", (28, 28))


def _idx_dataset(name: str) -> Callable[[DataConfig], Dataset]:
    def load(cfg: DataConfig) -> Dataset:
        roots = [Path(cfg.root).expanduser()] if cfg.root else []
        if name == "fashion_mnist" and not cfg.root:
            roots.append(Path(FASHION_DEBIAN_ROOT))
        for root in roots:
            if any(_find_idx(root, f) for f in IDX_FILES.values()):
                return _load_idx_folder(name, root, cfg)
        if cfg.download:
            return _download_openml(name, cfg)
        raise DataError(_missing_message(name, roots[0] if roots else None))

    return load


def load_kaggle_csv(cfg: DataConfig) -> Dataset:
    from digitlab.data.csv import read_kaggle_csv

    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file not found; point data.path at Kaggle's 'Digit Recognizer' "
                        "train.csv (label,pixel0,…,pixel783).")
    cells, digest = cached_array(path, lambda p, raw: read_kaggle_csv(p, raw=raw), cfg.cache_dir)
    if cells.shape[1] != 785:
        raise DataError(f"{path}: this is an unlabeled test.csv (no 'label' column); training "
                        "needs Kaggle's train.csv.")
    return Dataset("kaggle_csv", np.ascontiguousarray(cells[:, 1:]),
                   cells[:, 0].astype(np.int64), None, None, 255.0, digest, str(path), (28, 28))


LOADERS: dict[str, Callable[[DataConfig], Dataset]] = {
    "digits": load_digits_dataset,
    "mnist": _idx_dataset("mnist"),
    "fashion_mnist": _idx_dataset("fashion_mnist"),
    "kaggle_csv": load_kaggle_csv,
}


def load_dataset(cfg: DataConfig) -> Dataset:
    return LOADERS[cfg.name](cfg)
