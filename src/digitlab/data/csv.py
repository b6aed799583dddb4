"""Reader of Kaggle "Digit Recognizer" CSV files: train.csv (label,pixel0,…,pixel783) and the
unlabeled test.csv (pixel0,…,pixel783), pixels 0–255 with pixel index = row·28 + column."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from digitlab.data.errors import DataError

FIX = "use Kaggle's 'Digit Recognizer' layout: a header label,pixel0,pixel1,… then integer cells"


def _header(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; set data.path to a Kaggle train.csv.")
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    if not first:
        raise DataError(f"{path}: the file is empty; {FIX}.")
    return [c.strip() for c in first.split(",")]


def _line_of(frame: pd.DataFrame, row: int) -> int:
    return int(frame.index[row]) + 2  # +1 for the header, +1 for 1-based line numbers


def _check_cells(path: Path, frame: pd.DataFrame) -> np.ndarray:
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):  # a column pandas read as text
            numeric = pd.to_numeric(values, errors="coerce")
            row = int(np.flatnonzero(numeric.isna() & values.notna())[0])
            raise DataError(f"{path}: line {_line_of(frame, row)}, column '{column}': "
                            f"{values.iloc[row]!r} is not a number; {FIX}.")
    cells = frame.to_numpy()
    missing = np.argwhere(pd.isna(frame).to_numpy())
    if len(missing):
        row, col = missing[0]
        raise DataError(f"{path}: line {_line_of(frame, row)} has fewer than {frame.shape[1]} "
                        f"cells (column '{frame.columns[col]}' is empty); {FIX}.")
    bad = np.argwhere(cells != np.round(cells))
    if len(bad):
        row, col = bad[0]
        raise DataError(f"{path}: line {_line_of(frame, row)}, column '{frame.columns[col]}': "
                        f"{cells[row, col]} is not a whole number; {FIX}.")
    return cells


def read_kaggle_csv(path: str | Path, n_pixels: int = 784) -> np.ndarray:
    """The CSV as a uint8 array: (n, 785) with the label first for train.csv, (n, 784) for
    test.csv. `n_pixels` other than 784 reads the same layout for other image sizes (64 for
    scikit-learn's 8×8 digits)."""
    path = Path(path)
    header = _header(path)
    labeled = header[:1] == ["label"]
    pixels = [f"pixel{i}" for i in range(n_pixels)]
    expected = ["label", *pixels] if labeled else pixels
    if header != expected:
        raise DataError(f"{path}: expected a header of {len(expected)} columns "
                        f"({','.join(expected[:3])},…,{pixels[-1]}), found {len(header)} columns "
                        f"starting {','.join(header[:3])!r}; {FIX}.")
    try:
        frame = pd.read_csv(path, skip_blank_lines=False)
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        where = f"line {m[2]} has {m[3]} cells, expected {m[1]}" if m else str(exc)
        raise DataError(f"{path}: {where}; {FIX}.") from None
    if frame.empty:
        raise DataError(f"{path}: the header has no data rows below it; {FIX}.")
    cells = _check_cells(path, frame)
    pixels = cells[:, 1:] if labeled else cells
    bad = np.argwhere((pixels < 0) | (pixels > 255))
    if len(bad):
        row, col = bad[0]
        raise DataError(f"{path}: line {_line_of(frame, row)}, column 'pixel{col}': pixel "
                        f"{pixels[row, col]:g} is outside 0–255; {FIX}.")
    if labeled:
        bad_rows = np.flatnonzero((cells[:, 0] < 0) | (cells[:, 0] > 9))
        if len(bad_rows):
            row = bad_rows[0]
            raise DataError(f"{path}: line {_line_of(frame, row)}: label {cells[row, 0]:g} is "
                            f"outside 0–9; {FIX}.")
    return cells.astype(np.uint8)
