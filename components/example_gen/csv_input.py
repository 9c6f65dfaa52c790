"""Finds the CSV files of a data location and reads what the pipeline must know up front."""
from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.compute as pc
import pyarrow as pa

# Markers read as missing values, beyond the empty field.
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


class InputError(ValueError):
    """Bad input data a user can fix; the message says what and where."""


def csv_files(data: str) -> list[Path]:
    """The CSV files of a file or folder, sorted for a stable order."""
    path = Path(data)
    if not path.exists():
        raise InputError(f"data path {data} does not exist")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not files:
        raise InputError(f"folder {data} holds no .csv file")
    return files


def read_column(data: str, column: str) -> pa.ChunkedArray:
    files = csv_files(data)
    tables = [
        pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
            include_columns=[column], null_values=NULL_VALUES, strings_can_be_null=True))
        for f in files
    ]
    return pa.concat_tables(tables).column(column)


def infer_task(data: str, label: str) -> str:
    """Classification for string or boolean labels and integers with few distinct values."""
    column = read_column(data, label)
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_boolean(kind):
        return "classification"
    if pa.types.is_integer(kind) and len(pc.unique(column.drop_null())) <= 20:
        return "classification"
    return "regression"


def check(data: str, label: str) -> None:
    """Fails before any stage starts when the data cannot feed the pipeline."""
    header = pacsv.open_csv(csv_files(data)[0]).schema.names
    if label not in header:
        raise InputError(f"label column {label!r} is not in {data}; columns: {', '.join(header)}")
