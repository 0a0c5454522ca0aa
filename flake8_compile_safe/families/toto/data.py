"""Toto's validation data: a seeded synthetic series, or a column of a CSV file. No torch here."""

from __future__ import annotations

import csv
import math
from pathlib import Path


class DataError(ValueError):
    """A data file that cannot be used: the message names the file and the problem."""


def default_series(length: int, seed: int = 0):
    """Seeded synthetic series: two seasonalities, a trend and noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    y = (10.0 + 0.01 * t + 2.0 * np.sin(2 * np.pi * t / 24.0) + 1.0 * np.sin(2 * np.pi * t / 96.0)
         + 0.3 * rng.standard_normal(length))
    return y.astype(np.float32)


def _number(cell: str):
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_csv_series(path: str, min_rows: int) -> list[float]:
    """First column whose every non-empty cell (a header row aside) parses as a float."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: CSV file not found")
    try:
        with p.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc.__class__.__name__}: {exc})") from None
    if not rows:
        raise DataError(f"{path}: CSV is empty")
    for col in range(max(len(r) for r in rows)):
        cells = [r[col].strip() if col < len(r) else "" for r in rows]
        body = cells[1:] if cells and _number(cells[0]) is None else cells
        values = [_number(c) for c in body if c != ""]
        if values and all(v is not None for v in values):
            if len(values) < min_rows:
                raise DataError(f"{path}: numeric column {col} has {len(values)} rows, need at least {min_rows} "
                                "(context + forecast horizon)")
            return values
    raise DataError(f"{path}: no numeric column (every column has non-numeric cells)")
