"""Deterministic benchmark data: TFX's processed penguin table (what its example reads),
derived from the embedded raw data, and scaled copies of it (resampled rows, small noise)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from kubetfx.pipelines.config import EMBEDDED_DATA

SPECIES = {"Adelie": 0, "Chinstrap": 1, "Gentoo": 2}
RAW_TO_PROCESSED = {"bill_length_mm": "culmen_length_mm", "bill_depth_mm": "culmen_depth_mm",
                    "flipper_length_mm": "flipper_length_mm", "body_mass_g": "body_mass_g"}
SIZES = {"default": None, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
# Wide tables (issue 15): this many numeric columns (kubetfx alone), 20k rows unless
# WIDE_ROWS says otherwise (1,000 columns: issue 23's width, at a row count the bench affords).
WIDTHS = {"wide-30": 30, "wide-100": 100, "wide-300": 300, "wide-1000": 1000}
WIDE_ROWS = {"wide-1000": 5_000}
CHUNK_ROWS = 500_000


def wide_rows(size: str) -> int:
    return WIDE_ROWS.get(size, 20_000)


def processed_rows() -> np.ndarray:
    """[species, 4 features scaled to [0, 1]] for every complete row of the raw data."""
    rows = []
    with open(EMBEDDED_DATA / "penguins.csv") as f:
        for row in csv.DictReader(f):
            values = [row[c] for c in RAW_TO_PROCESSED]
            if all(values):
                rows.append([SPECIES[row["species"]]] + [float(v) for v in values])
    data = np.array(rows, dtype=np.float64)
    low, high = data[:, 1:].min(axis=0), data[:, 1:].max(axis=0)
    data[:, 1:] = (data[:, 1:] - low) / (high - low)
    return data


def write(size: str, folder: Path, seed: int = 42) -> Path:
    """`folder/labelled/data.csv` (the layout TFX's penguin example reads from its data root)
    with the processed schema; the same bytes for the same size. Written in chunks of
    CHUNK_ROWS (each drawn from its own seeded generator), so memory stays flat at 10M rows."""
    path = folder / "labelled" / "data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path
    base = processed_rows()
    rows = SIZES[size]
    partial = path.with_suffix(".partial")  # an interrupted write leaves no truncated data.csv
    with open(partial, "w") as f:
        f.write("species," + ",".join(RAW_TO_PROCESSED.values()) + "\n")
        if rows is None:
            _write_rows(f, base)
        for start in range(0, rows or 0, CHUNK_ROWS):
            count = min(CHUNK_ROWS, rows - start)
            rng = np.random.default_rng([seed, start])
            data = base[rng.integers(0, len(base), count)]
            data[:, 1:] = np.clip(data[:, 1:] + rng.normal(0, 0.01, (count, 4)), 0, 1)
            _write_rows(f, data)
    partial.rename(path)
    return path


def _write_rows(f, data: np.ndarray) -> None:
    """species as an integer, the four features with 6 decimals (pandas' C writer: a 10M-row
    table in about a minute instead of several with per-row Python formatting)."""
    frame = pd.DataFrame(data[:, 1:])
    frame.insert(0, "species", data[:, 0].astype(np.int64))
    frame.to_csv(f, header=False, index=False, float_format="%.6f", lineterminator="\n")


def write_wide(columns: int, folder: Path, rows: int = 20_000, seed: int = 7) -> Path:
    """A wide table as users bring it (issue 15): `columns` numeric columns, one small
    categorical, a unique row id, an ISO timestamp string and a label that depends on a few
    numeric columns and the category. The same bytes for the same arguments."""
    path = folder / (f"wide-{columns}" if rows == 20_000 else f"wide-{columns}x{rows}") / "data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    numbers = rng.normal(0, 1, (rows, columns))
    category = rng.choice(["north", "south", "east", "west"], rows)
    signal = numbers[:, 0] + 0.5 * numbers[:, 1 % columns] + (category == "north")
    label = np.where(signal > 0.5, "high", "low")
    seconds = 1_700_000_000 + rng.integers(0, 90 * 86_400, rows)
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    header = ["row_id", "created_at", "region"] + [f"x{i}" for i in range(columns)] + ["label"]
    lines = [",".join(header)]
    for i in range(rows):
        values = ",".join(f"{v:.4f}" for v in numbers[i])
        lines.append(f"r{i:07d}-{rng.integers(1e9):09d},{stamps[i]},{category[i]},{values},{label[i]}")
    path.write_text("\n".join(lines) + "\n")
    return path
