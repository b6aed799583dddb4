"""Train / validation / test split (scikit-learn, seeded) and input scaling fitted on training rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from digitlab.config import DataConfig
from digitlab.data.cache import array_digest, cached_arrays
from digitlab.data.errors import DataError
from digitlab.data.sources import Dataset


@dataclass(frozen=True)
class Split:
    name: str
    digest: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray  # may have 0 rows (data.val_mode=none)
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    image_shape: tuple[int, int]
    scaling: Scaling  # raw pixels → network inputs
    raw_test: np.ndarray  # the test rows before scaling (predictions on raw pixels)
    raw_examples: np.ndarray  # a few raw rows (test, or training without a test set)
    pixel_max: float = 255.0  # the largest raw pixel value the dataset can hold

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def has_val(self) -> bool:
        return len(self.y_val) > 0

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


@dataclass(frozen=True)
class Scaling:
    """x ↦ x·factor + shift, per pixel or for all; every scaling here is of this form, so a
    saved model carries its preprocessing as two plain arrays."""

    factor: np.ndarray
    shift: np.ndarray

    def __call__(self, x: np.ndarray, dtype: str = "float32") -> np.ndarray:
        # x cast to dtype as it is multiplied: one new array, not a cast copy and a product
        out = np.multiply(np.asarray(x), self.factor.astype(dtype), dtype=dtype)
        out += self.shift.astype(dtype)
        return out


def _affine(factor, shift) -> Scaling:
    return Scaling(np.asarray(factor, np.float64), np.asarray(shift, np.float64))


def _global_minmax(train: np.ndarray, pixel_max: float) -> Scaling:
    low, high = float(train.min()), float(train.max())  # rolisz: X -= X.min(); X /= X.max()
    return _affine(1 / max(high - low, 1e-12), -low / max(high - low, 1e-12))


def _standard(train: np.ndarray, pixel_max: float) -> Scaling:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train.astype(np.float64))  # constant pixels get scale 1
    return _affine(1 / scaler.scale_, -scaler.mean_ / scaler.scale_)


def _minmax_feature(train: np.ndarray, pixel_max: float) -> Scaling:
    from sklearn.preprocessing import MinMaxScaler

    scaler = MinMaxScaler().fit(train.astype(np.float64))
    return _affine(scaler.scale_, scaler.min_)


SCALERS: dict[str, Callable[[np.ndarray, float], Scaling]] = {
    "unit": lambda train, pixel_max: _affine(1 / pixel_max, 0.0),  # → [0, 1]
    "raw": lambda train, pixel_max: _affine(1.0, 0.0),  # the blog network's 0–255
    "minmax": _global_minmax,
    "minmax_feature": _minmax_feature,  # per pixel, scikit-learn's example
    "standard": _standard,  # per pixel, fitted on training rows only
    # Rashid: x/255·0.99 + 0.01 keeps every input away from 0
    "rashid": lambda train, pixel_max: _affine(0.99 / pixel_max, 0.01),
}


def _random_state(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def _val_count(cfg: DataConfig, n: int) -> int:
    count = int(cfg.val_size) if cfg.val_size >= 1 else int(round(cfg.val_size * n))
    if not 0 < count < n:
        raise DataError(f"data.val_size={cfg.val_size} leaves {n - count} of {n} training rows; "
                        "choose a validation size between 1 and the number of training rows.")
    return count


def _stratify(y: np.ndarray) -> np.ndarray | None:
    # stratify only when every class has at least two rows, as train_test_split requires
    return y if np.bincount(y).min(initial=2) >= 2 and len(np.unique(y)) > 1 else None


def _split_off(x: np.ndarray, y: np.ndarray, count: int | float, key: str, value: float,
               rng: np.random.Generator, cache_dir: str | None):
    """train_test_split of `count` rows (or that fraction) from x, y, stratified where it can
    be; a split that leaves a side without a row of every class is a DataError naming `key`."""
    n = len(y)
    taken = count if count >= 1 else int(np.ceil(count * n))
    stratify = _stratify(y)
    classes = len(np.unique(y))
    if stratify is not None and min(taken, n - taken) < classes:
        raise DataError(f"{key}={value} splits {n} rows into {n - taken} and {taken}: a "
                        f"stratified split needs at least one row of each of the {classes} "
                        f"classes on each side; choose a {key} that leaves ≥ {classes} rows on "
                        "each side.")
    rows = _split_rows(y, count, stratify is not None, _random_state(rng), key, value, cache_dir)
    return x[rows["train"]], x[rows["test"]], y[rows["train"]], y[rows["test"]]


def _split_rows(y: np.ndarray, count: int | float, stratified: bool, random_state: int,
                key: str, value: float, cache_dir: str | None) -> dict[str, np.ndarray]:
    """The row indices train_test_split gives, in its order; cached under all they depend on
    (the labels, the size, the seed, scikit-learn's version), so a run whose split is known does
    not import scikit-learn (≈ 0.6 s)."""
    from importlib.metadata import version

    identity = (array_digest(y), count, stratified, random_state, version("scikit-learn"))
    digest = hashlib.sha256(repr(identity).encode()).hexdigest()[:32]

    def split() -> dict[str, np.ndarray]:
        rows = _train_test_rows(y, count, stratified, random_state)
        if isinstance(rows, str):
            raise DataError(f"{key}={value} cannot split {len(y)} rows: {rows}; use a larger "
                            f"data set or another {key}.")
        return rows

    return cached_arrays("splits", digest, split, cache_dir)


def _train_test_rows(y: np.ndarray, count: int | float, stratified: bool,
                     random_state: int) -> dict[str, np.ndarray] | str:
    """train_test_split's train and test rows of `y`, or why it cannot split them."""
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(np.arange(len(y)), test_size=count,
                                       stratify=y if stratified else None,
                                       random_state=random_state)
    except ValueError as exc:  # e.g. too few rows for any split
        return str(exc)
    return {"train": train, "test": test}


def _test_split(ds: Dataset, cfg: DataConfig, rng: np.random.Generator):
    if cfg.test_split == "official" and ds.x_test is not None:
        return ds.x_train, ds.y_train, ds.x_test, ds.y_test
    x = ds.x_train if ds.x_test is None else np.concatenate([ds.x_train, ds.x_test])
    y = ds.y_train if ds.y_test is None else np.concatenate([ds.y_train, ds.y_test])
    if cfg.test_split == "none":  # train on every row (scikit-learn's digits example)
        return x, y, x[:0], y[:0]
    if cfg.test_split == "bernoulli":  # the blog network: each row goes to training with probability p
        train = rng.random(len(y)) < cfg.bernoulli_p
        return x[train], y[train], x[~train], y[~train]
    x_train, x_test, y_train, y_test = _split_off(x, y, cfg.test_size, "data.test_size",
                                                  cfg.test_size, rng, cfg.cache_dir)
    return x_train, y_train, x_test, y_test


def make_split(ds: Dataset, cfg: DataConfig, rng: np.random.Generator,
               dtype: str = "float32") -> Split:
    """Seeded split of `ds` as `cfg` says, scaled with statistics of the training rows only."""
    labels = np.unique(ds.y_train)
    if len(labels) < 2:
        found = f"every training row has label {labels[0]}" if len(labels) else "no rows"
        raise DataError(f"{ds.source}: {found}; a classifier needs rows of at least two classes "
                        "(is the label column right?).")
    x_train, y_train, x_test, y_test = _test_split(ds, cfg, rng)
    x_val, y_val = x_train[:0], y_train[:0]
    if cfg.val_mode == "last":  # Nielsen: the last 10,000 of the 60,000 training images
        count = _val_count(cfg, len(y_train))
        x_train, x_val = x_train[:-count], x_train[-count:]
        y_train, y_val = y_train[:-count], y_train[-count:]
    elif cfg.val_mode == "stratified":
        count = _val_count(cfg, len(y_train))
        x_train, x_val, y_train, y_val = _split_off(x_train, y_train, count, "data.val_size",
                                                    cfg.val_size, rng, cfg.cache_dir)
    if cfg.train_limit is not None:  # Nielsen's "first 1,000 training images"
        x_train, y_train = x_train[:cfg.train_limit], y_train[:cfg.train_limit]
    scaling = SCALERS[cfg.scale](x_train, ds.pixel_max)
    classes = np.unique(np.concatenate([ds.y_train] + ([ds.y_test] if ds.y_test is not None else [])))
    return Split(ds.name, ds.digest, scaling(x_train, dtype), np.asarray(y_train, np.int64),
                 scaling(x_val, dtype), np.asarray(y_val, np.int64), scaling(x_test, dtype),
                 np.asarray(y_test, np.int64), classes, ds.image_shape, scaling,
                 np.asarray(x_test), np.asarray(x_test if len(x_test) else x_train)[:5],
                 float(ds.pixel_max))
