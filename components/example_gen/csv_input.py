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


_BINARY_SIGNATURES = {b"\x89PNG": "a PNG image", b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive",
                      b"PAR1": "a Parquet file", b"%PDF": "a PDF document"}
_SNIFF_BYTES = 64 * 1024


def _check_bytes(path: Path) -> None:
    """Empty, binary or non-UTF-8 content, from the first bytes of the file."""
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): expected a header line and data rows")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    for magic, kind in _BINARY_SIGNATURES.items():
        if head.startswith(magic):
            raise InputError(f"{path} is not a CSV file: it is {kind}")
    if b"\x00" in head:
        raise InputError(f"{path} is not a CSV file: it contains binary data (NUL bytes)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not merely a character cut at the sniff boundary
            raise InputError(
                f"{path} is not UTF-8 (byte {err.start}: {head[err.start:err.start + 1]!r}); "
                "re-encode it, e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`") from None


def _header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        line = f.readline().rstrip("\r\n")
    columns = line.split(",")
    if len(columns) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in line:
                raise InputError(f"{path} separates columns with {name}, not commas; convert it to comma-separated CSV")
    if len(set(columns)) != len(columns):
        raise InputError(f"{path} has duplicate column names in its header: {line}")
    return columns


def _scan_rows(path: Path) -> int:
    """Parses every row (streaming, in C++); returns the row count."""
    rows = 0
    try:
        reader = pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True),
                                read_options=pacsv.ReadOptions(block_size=1 << 22))
        for batch in reader:
            rows += batch.num_rows
    except pa.ArrowInvalid as err:
        message = str(err).replace("CSV parse error: ", "")
        raise InputError(f"{path} is not a consistent CSV file: {message} "
                         "(rows must have as many comma-separated fields as the header)") from None
    return rows


def check(data: str, label: str) -> None:
    """Fails before any stage starts when the data cannot feed the pipeline."""
    files = csv_files(data)
    header = None
    for path in files:
        _check_bytes(path)
        columns = _header(path)
        if header is not None and columns != header:
            raise InputError(f"{path} has other columns than {files[0]}: {columns} vs {header}; "
                             "files of one dataset must share the header")
        header = columns
        if _scan_rows(path) == 0:
            raise InputError(f"{path} has a header but no data rows")
    if label not in header:
        raise InputError(f"label column {label!r} is not in {data}; columns: {', '.join(header)}")
    labels = read_column(data, label)
    if labels.null_count == len(labels):
        raise InputError(f"label column {label!r} has no values in {data}")
