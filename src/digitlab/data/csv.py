"""Reader of Kaggle "Digit Recognizer" CSV files: train.csv (label,pixel0,…,pixel783) and the
unlabeled test.csv (pixel0,…,pixel783), pixels 0–255 with pixel index = row·28 + column."""

from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab.data.errors import DataError

if TYPE_CHECKING:  # pandas (≈ 0.3 s) is imported where a CSV is read
    import pandas as pd

FIX = "use Kaggle's 'Digit Recognizer' layout: a header label,pixel0,pixel1,… then integer cells"


NA_WORDS = ("nan", "na", "n/a", "null", "none", "inf", "-inf")  # cells pandas would read as NaN


def _text(path: Path, raw: bytes | None) -> str:
    """The file's text: plain, gzipped (train.csv.gz) or the one CSV in a zip (Kaggle's own
    download), UTF-8 with or without the byte-order mark spreadsheet programs write, its lines
    ended by LF, CRLF or a lone CR (classic Mac OS)."""
    if raw is None:
        if not path.is_file():
            raise DataError(f"{path}: file not found; set data.path to a Kaggle train.csv.")
        raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: gzip data that does not decompress ({exc}); download the "
                            "file again.") from None
    elif raw[:4] == b"PK\x03\x04":
        raw = _zip_member(path, raw)
    if b"\0" in raw[:65536]:
        raise DataError(f"{path}: binary data, not CSV text (it starts {raw[:8]!r}); {FIX}.")
    return raw.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _zip_member(path: Path, raw: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise DataError(f"{path}: a zip archive with {len(names)} CSV files "
                                f"({', '.join(names[:4]) or 'none'}); unzip it and point "
                                "data.path at the one you mean.")
            return archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: a zip archive that does not open ({exc}); download the file "
                        "again.") from None


def _header(path: Path, text: str) -> list[str]:
    first = text.split("\n", 1)[0].strip()
    if not text.strip():
        raise DataError(f"{path}: the file is empty; {FIX}.")
    return [c.strip() for c in next(csv.reader([first]))]  # R's write.csv quotes the header


def _line_of(frame: pd.DataFrame, row: int) -> int:
    return int(frame.index[row]) + 2  # +1 for the header, +1 for 1-based line numbers


def _check_cells(path: Path, frame: pd.DataFrame) -> np.ndarray:
    import pandas as pd

    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):  # a column pandas read as text
            numeric = pd.to_numeric(values, errors="coerce")
            row = int(np.flatnonzero(numeric.isna() & values.notna())[0])
            cell = values.iloc[row]
            what = ("a missing value (NaN), not a number" if str(cell).strip().lower() in NA_WORDS
                    else "not a number")
            raise DataError(f"{path}: line {_line_of(frame, row)}, column '{column}': "
                            f"{cell!r} is {what}; {FIX}.")
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


def read_kaggle_csv(path: str | Path, n_pixels: int = 784, raw: bytes | None = None) -> np.ndarray:
    """The CSV as a uint8 array: (n, 785) with the label first for train.csv, (n, 784) for
    test.csv. `n_pixels` other than 784 reads the same layout for other image sizes (64 for
    scikit-learn's 8×8 digits). From the file's bytes `raw` when given, else read from `path`."""
    path = Path(path)
    text = _text(path, raw)
    header = _header(path, text)
    labeled = header[:1] == ["label"]
    pixels = [f"pixel{i}" for i in range(n_pixels)]
    expected = ["label", *pixels] if labeled else pixels
    if header != expected:
        raise DataError(f"{path}: expected a header of {len(expected)} columns "
                        f"({','.join(expected[:3])},…,{pixels[-1]}), found {len(header)} columns "
                        f"starting {','.join(header[:3])!r}; {FIX}.")
    import pandas as pd

    try:  # only empty cells are missing: "NaN" or "NA" in a pixel file is an error to name
        frame = pd.read_csv(io.StringIO(text), skip_blank_lines=False, keep_default_na=False,
                            na_values=[""])
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        where = f"line {m[2]} has {m[3]} cells, expected {m[1]}" if m else str(exc)
        raise DataError(f"{path}: {where}; {FIX}.") from None
    blank = frame.isna().all(axis=1).to_numpy()
    end = len(frame) - int(np.argmin(blank[::-1])) if not blank.all() else 0
    frame = frame.iloc[:end]  # blank lines at the end of the file are no rows
    if frame.empty:
        raise DataError(f"{path}: the header has no data rows below it; {FIX}.")
    if blank[:end].any():
        row = int(np.flatnonzero(blank[:end])[0])
        raise DataError(f"{path}: line {_line_of(frame, row)} is blank; remove it ({FIX}).")
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
