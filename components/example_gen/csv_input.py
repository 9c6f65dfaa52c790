"""Finds the CSV files of a data location, reads them as the tools that write CSV mean
them, and checks up front what the pipeline must know.

One reading for everyone: the checks before a run and the ExampleGen executor open files
with `open_rows` (Arrow's C++ CSV parser, RFC 4180 quoting), so a file the checks accept is
read the same way by the stage. What that reading accepts, and why:

- quoted names and fields (R's write.csv quotes everything), commas and line breaks inside
  quotes (`newlines_in_values`: without it a quoted line break that straddles one of
  Arrow's blocks is a parse error), LF, CRLF or CR line ends, blank lines (also of spaces);
- a UTF-8 byte-order mark (Excel's "CSV UTF-8"): Arrow skips it;
- Excel's `sep=,` hint as the first line: skipped (another separator is refused);
- the unnamed first column of row names or an index (R's write.csv and pandas' to_csv
  default): dropped, it numbers rows and would be a feature that predicts nothing;
- rows whose fields are all empty (spreadsheets export formatted empty rows as `,,,`):
  dropped, they are not examples;
- missing-value markers: pandas' default list plus `\\N` (MySQL/PostgreSQL text exports).

What it refuses, with one line: other encodings (UTF-16 from Excel's "Unicode text",
Latin-1/cp1252 from older Excel): guessing an encoding silently changes values
(cp1252 and Latin-1 differ exactly on characters like the euro sign), so the message says
how to re-encode instead; other separators (`;` with decimal commas, tabs, pipes).
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import warnings
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

# Read as missing values. pandas' default na_values (pandas 2.2 pandas/_libs/parsers.pyx
# STR_NA_VALUES: what R, pandas and Excel users call "missing") plus "\N", the NULL of
# MySQL's SELECT ... INTO OUTFILE and PostgreSQL's COPY text format.
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
               "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "\\N"]


def _skip_whitespace_lines(row) -> str:
    """A line of only spaces is a blank line (Arrow skips empty ones only); others fail."""
    return "skip" if row.text is not None and not row.text.strip() else "error"


# Quoted line breaks are legal CSV (RFC 4180 section 2.6); every reader must allow them.
PARSE_OPTIONS = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=_skip_whitespace_lines)
DEFAULT_BLOCK_BYTES = 4 << 20
NARROWEST_FIRST = (pa.int64(), pa.float32())  # tf.Example floats are 32-bit


class InputError(ValueError):
    """Bad input data a user can fix; the message says what and where."""


def csv_files(data: str) -> list[Path]:
    """The CSV files of a file or folder, sorted for a stable order, each resolved and
    opened: a dangling link or an unreadable file is named here, not by ExampleGen's
    reader (a NotFoundError that names no path)."""
    path = Path(data)
    if not path.exists():
        _refuse_dangling(path)
        raise InputError(f"data path {data} does not exist")
    _refuse_special(path)
    if path.is_file():
        files = [path]
    else:
        files = regular_files(sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv"))
    if not files:
        raise InputError(f"folder {data} holds no .csv file")
    return readable(files)


def regular_files(candidates: list) -> list[Path]:
    """The regular files among a folder's candidates; a dangling link or a device, FIFO or
    socket among them is refused, naming it (every input format checks its files so)."""
    for candidate in candidates:
        _refuse_dangling(candidate)
        _refuse_special(candidate)
    return [p for p in candidates if p.is_file()]


def readable(files: list) -> list:
    """`files`, each opened once: an unreadable one is named here, not by a stage."""
    for file in files:
        try:
            with open(file, "rb"):
                pass
        except OSError as err:
            raise InputError(f"{file} cannot be read: {err.strerror or err}") from None
    return files


def _refuse_dangling(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                         "fix or remove the link")


_SPECIAL_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                  (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


def _refuse_special(path: Path) -> None:
    """Devices, pipes and sockets are no data files: /dev/zero never ends, a FIFO blocks the
    first open until some writer comes, and neither has a size to record."""
    mode = path.stat().st_mode
    for is_kind, kind in _SPECIAL_KINDS:
        if is_kind(mode):
            raise InputError(f"{path} is {kind}, not a regular file: give a CSV file or a folder of them")


# ---- how a file is read (shared with the executor) -------------------------------------
_SEP_HINT = re.compile(rb"^(?:\xef\xbb\xbf)?sep=(.)\r?\n", re.IGNORECASE)  # Excel's separator hint


def _sep_hint(path) -> Optional[str]:
    with open(path, "rb") as f:
        match = _SEP_HINT.match(f.read(16))
    return match.group(1).decode("latin-1") if match else None


def read_options(path, block_size: int = DEFAULT_BLOCK_BYTES) -> pacsv.ReadOptions:
    return pacsv.ReadOptions(block_size=block_size, skip_rows=1 if _sep_hint(path) else 0)


def header(path) -> list[str]:
    """The column names as Arrow parses them (quotes removed, BOM and `sep=` line skipped)."""
    try:  # a malformed row in the first block is skipped here and reported by the row count
        reader = pacsv.open_csv(path, read_options=read_options(path),  # a block holds the whole header
                                parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                                                 invalid_row_handler=lambda row: "skip"))
    except pa.ArrowInvalid as err:
        raise InputError(f"{path} is not a CSV file kubetfx can read: {_arrow_message(err)}") from None
    return reader.schema.names


def feature_columns(names: list[str]) -> list[str]:
    """The columns that become features: all but an unnamed first column (row names)."""
    return names[1:] if names and not names[0].strip() else list(names)


def open_rows(path, column_types: Optional[dict] = None, block_size: int = DEFAULT_BLOCK_BYTES,
              include_columns: Optional[list] = None):
    """A streaming reader of the file's record batches, as every kubetfx reader reads it."""
    if include_columns is None:
        include_columns = feature_columns(header(path))
    convert = pacsv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True, include_columns=include_columns,
                                   column_types=column_types or {})
    return pacsv.open_csv(path, read_options=read_options(path, block_size), parse_options=PARSE_OPTIONS,
                          convert_options=convert)


def drop_blank_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Without the rows whose every field is missing (a spreadsheet's `,,,` lines)."""
    if batch.num_columns == 0 or all(c.null_count == 0 for c in batch.columns):
        return batch
    blank = pc.is_null(batch.column(0))
    for column in batch.columns[1:]:
        blank = pc.and_(blank, pc.is_null(column))
    return batch.filter(pc.invert(blank)) if pc.any(blank).as_py() else batch


def _arrow_message(err: Exception) -> str:
    return str(err).replace("CSV parse error: ", "").splitlines()[0]


# ---- what the pipeline must know up front ----------------------------------------------
def as_strings(names: list[str]) -> dict:
    return {name: pa.string() for name in names}


def narrowest_type(column, kind: int = 0) -> int:
    """Index into NARROWEST_FIRST of the narrowest type, from `kind` on, that holds every
    value of a string column (len(NARROWEST_FIRST) = stays a string)."""
    while kind < len(NARROWEST_FIRST):
        try:
            pc.cast(column, NARROWEST_FIRST[kind])
            return kind
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            kind += 1
    return kind


def infer_column_types(paths: list) -> dict:
    """Per column the narrowest of int64 < float32 < bytes that holds every value in every
    file (Arrow alone infers from the first block only, and a later block that does not fit
    fails). The executor writes these types; the task is chosen from the label's."""
    names = feature_columns(header(paths[0]))
    kinds = {name: 0 for name in names}
    for path in paths:
        for batch in open_rows(path, as_strings(names), include_columns=names):
            for name, column in zip(batch.schema.names, batch.columns):
                kinds[name] = narrowest_type(column, kinds[name])
    return {name: NARROWEST_FIRST[k] if k < len(NARROWEST_FIRST) else pa.binary() for name, k in kinds.items()}


def read_column(data: str, column: str) -> pa.ChunkedArray:
    """One column of every file as strings, blank rows left out."""
    chunks = []
    for path in csv_files(data):
        names = feature_columns(header(path))
        for batch in open_rows(path, as_strings(names), include_columns=names):
            chunks.append(drop_blank_rows(batch).column(column))
    return pa.chunked_array(chunks, pa.string())


def infer_task(data: str, label: str) -> str:
    """Classification for string labels and integers with few distinct values, read with the
    types the executor writes (so "1.0" is a float and "yes" a string)."""
    return _task_of(read_column(data, label).drop_null())


def _task_of(column) -> str:
    kind = narrowest_type(column)
    if kind == 0 and len(pc.unique(column)) <= 20 or kind == len(NARROWEST_FIRST):
        return "classification"
    return "regression"


_BINARY_SIGNATURES = {b"\x89PNG": "a PNG image", b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive (.xlsx files are zip archives)",
                      b"PAR1": "a Parquet file", b"%PDF": "a PDF document", b"\xd0\xcf\x11\xe0": "an old Excel/Office file (.xls)"}
# UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one.
_OTHER_ENCODINGS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}
_SNIFF_BYTES = 64 * 1024


def _not_utf8(path, where: str, byte: bytes = b"") -> InputError:
    shown = f" ({where}: {byte!r})" if byte else f" ({where})"
    return InputError(f"{path} is not UTF-8{shown}; re-encode it, e.g. `iconv -f cp1252 -t utf-8 in.csv > out.csv` "
                      "(Excel: save as 'CSV UTF-8')")


def _check_bytes(path: Path) -> None:
    """Empty, binary or non-UTF-8 content, from the first bytes of the file."""
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): expected a header line and data rows")
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    for magic, kind in _BINARY_SIGNATURES.items():
        if head.startswith(magic):
            raise InputError(f"{path} is not a CSV file: it is {kind}")
    for mark, encoding in _OTHER_ENCODINGS.items():
        if head.startswith(mark):
            raise InputError(f"{path} is {encoding}-encoded (Excel's 'Unicode text' is UTF-16 with tabs); "
                             "save it as 'CSV UTF-8' or run `iconv -f utf-16 -t utf-8`, then use commas")
    if b"\x00" in head:
        raise InputError(f"{path} is not a CSV file: it contains binary data (NUL bytes)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not merely a character cut at the sniff boundary
            raise _not_utf8(path, f"byte {err.start}", head[err.start:err.start + 1]) from None


def _check_header(path: Path) -> list[str]:
    hint = _sep_hint(path)
    if hint and hint != ",":
        raise InputError(f"{path} declares the separator {hint!r} (first line 'sep={hint}'); "
                         "kubetfx reads comma-separated CSV: convert it")
    columns = header(path)
    if len(columns) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if sep in columns[0]:
                raise InputError(f"{path} separates columns with {name}, not commas; convert it to comma-separated CSV")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise InputError(f"{path} has duplicate column names in its header: {', '.join(map(repr, duplicates))}")
    unnamed = [i + 1 for i, c in enumerate(columns) if not c.strip() and i > 0]
    if unnamed:
        raise InputError(f"{path}: column {unnamed[0]} of the header has no name; name every column "
                         "(only a first column of row names may be unnamed)")
    return feature_columns(columns)


def _count_rows(path: Path) -> int:
    """Parses every row (streaming, in C++); returns the number of non-blank rows."""
    rows, names = 0, feature_columns(header(path))
    try:  # as strings: a type that changes after the first block is the executor's to settle
        for batch in open_rows(path, as_strings(names), include_columns=names):
            rows += drop_blank_rows(batch).num_rows
    except pa.ArrowInvalid as err:
        message = _arrow_message(err)
        if "UTF8" in message:  # beyond the bytes _check_bytes sniffed
            raise _not_utf8(path, "past the first 64 KiB") from None
        raise InputError(f"{path} is not a consistent CSV file: {message} "
                         "(rows must have as many comma-separated fields as the header)") from None
    return rows


def check(data: str, label: str, task: Optional[str] = None, rare_in_train: str = "fail") -> Optional[str]:
    """Fails before any stage starts when the data cannot feed the pipeline (`task`: None =
    as infer_task would choose). `rare_in_train`: "warn" lets classes rare in the train
    split through, as `on_anomalies: warn` does, and returns the line to warn with."""
    files = csv_files(data)
    columns = None
    for path in files:
        _check_bytes(path)
        these = _check_header(path)
        if columns is not None and these != columns:
            raise InputError(f"{path} has other columns than {files[0]}: {these} vs {columns}; "
                             "files of one dataset must share the header")
        columns = these
        if _count_rows(path) == 0:
            raise InputError(f"{path} has a header but no data rows")
    if label not in columns:
        raise InputError(f"label column {label!r} is not in {data}; columns: {', '.join(columns)}")
    labels = read_column(data, label)
    if labels.null_count == len(labels):
        raise InputError(f"label column {label!r} has no values in {data}")
    if (task or _task_of(labels.drop_null())) == "classification":
        _check_classes(labels.drop_null(), label, data)
        problem = rare_classes_in_train(files, label, labels.drop_null())
        if problem and rare_in_train != "warn":
            raise InputError(problem)
        return problem
    return None


MIN_CLASS_ROWS = 5  # fewer: the split may leave a class out of train or eval altogether


def _check_classes(labels: pa.ChunkedArray, label: str, data: str) -> None:
    """A one-class label trains a constant predictor that the Evaluator blesses at accuracy
    1.0 and Pusher pushes; a class of a few rows is learned from nothing or judged on
    nothing. Both are refused before any stage, counted over all the data."""
    counts = {str(c["values"]): int(c["counts"]) for c in pc.value_counts(labels).to_pylist()}
    if len(counts) == 1:
        raise InputError(f"label column {label!r} has one class ({next(iter(counts))!r}) in {data}: "
                         "a classifier needs at least two; add rows of other classes")
    rare = sorted((n, v) for v, n in counts.items() if n < MIN_CLASS_ROWS)
    if rare:
        shown = ", ".join(f"{v!r} ({n} row{'s' if n != 1 else ''})" for n, v in rare[:5])
        more = f" and {len(rare) - 5} more" if len(rare) > 5 else ""
        raise InputError(f"label column {label!r} has classes with fewer than {MIN_CLASS_ROWS} rows in {data}: "
                         f"{shown}{more}; add rows, merge them into another class or drop them")


MIN_TRAIN_CLASS_ROWS = 3  # fewer examples of a class to learn from: it is learned from nothing
# A class with this many rows in all has less than a 1e-15 chance of fewer than
# MIN_TRAIN_CLASS_ROWS in a 2-of-3 split: only rarer ones are looked at.
_CERTAIN_ENOUGH_ROWS = 40


def rare_classes_in_train(files: list, label: str, labels: pa.ChunkedArray) -> Optional[str]:
    """One line naming the classes with fewer than MIN_TRAIN_CLASS_ROWS rows in the train
    split ExampleGen will write (rows placed by hash, as it places them), or None. Only the
    rows of classes rare in the whole table are hashed: usual data costs nothing here."""
    if pc.min(pc.value_counts(labels).field("counts")).as_py() >= _CERTAIN_ENOUGH_ROWS:
        return None
    with _import_noise_hidden():  # TensorFlow: only when needed
        from kubetfx.components.example_gen import executor

    per_split = executor.label_counts_per_split(files, label, _CERTAIN_ENOUGH_ROWS)
    rare_classes = set(per_split["train"]) | set(per_split["eval"])
    return rare_classes_message(label, {c: per_split["train"].get(c, 0) for c in rare_classes})


def rare_classes_message(label: str, train_rows: dict) -> str | None:
    """The one line for the classes of {class: its rows in the train split} that have fewer
    than MIN_TRAIN_CLASS_ROWS there, or None (every input format's check says it so)."""
    rare = sorted((n, str(c)) for c, n in train_rows.items() if n < MIN_TRAIN_CLASS_ROWS)
    if not rare:
        return None
    shown = ", ".join(f"{v!r} ({n})" for n, v in rare[:5])
    more = f" and {len(rare) - 5} more" if len(rare) > 5 else ""
    return (f"label column {label!r}: {len(rare)} class{'es' if len(rare) != 1 else ''} would have fewer than "
            f"{MIN_TRAIN_CLASS_ROWS} rows in the train split (2 of 3 rows, by hash): {shown}{more}; add rows, "
            "merge or drop them (--on-anomalies warn trains anyway; a class the train split lacks is then "
            "an unseen class)")


@contextlib.contextmanager
def _import_noise_hidden():
    """TensorFlow's first import writes C++ registration errors ("Unable to register cuFFT
    factory") and libraries' FutureWarnings to stderr, which would stand before the one
    line a refused input gets. Hidden at the descriptor for the import only."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
