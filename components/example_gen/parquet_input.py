"""Parquet in: what Spark and warehouses hand over. The Parquet schema says each column's
type, so nothing is guessed from text as for CSV; each type maps to the tf.Example kind
the same value would get from a CSV cell:

- integers (signed, unsigned) and booleans -> int64 (True 1, False 0);
- floats and decimals -> float (tf.Example floats are 32-bit);
- strings and binary -> bytes, as written;
- timestamps, dates and times -> bytes of their ISO 8601 text (`2024-01-14 00:47:33.000000`,
  `Z` after a UTC-aware one): what the same column holds in a CSV export, so column_roles
  finds them as date/time columns and Transform parses them in its graph (a model server
  request then sends the same text);
- dictionary (categorical) columns -> their values' kind; all-null columns -> no kind;
- nested columns (list, struct, map) and anything else (durations, intervals) are refused
  in one line naming the column: a tf.Example feature of a row here is one value.

A null is a missing value, left out of its row's Example as an empty CSV cell is, and so is
a float NaN (CSV's "NaN" is a missing-value marker); a row with every value missing is
dropped as a blank CSV row is. Rows are placed in the splits by the hash of their Example,
as TFX places every record (executor.splits_of). Files are read a batch of rows at a time
through a bounded buffer per column: memory stays bounded whatever the file's or its row
groups' size.

A folder partitioned as Spark and Hive write it (`dt=2026-12-01/part-0.parquet`, folders
found by data_format.partitioned_files) is one table: each `key=value` folder directly
above a file gives its rows a column `key`, as Spark and pyarrow.dataset's
`partitioning="hive"` do. Its kind is the narrowest that holds every folder's value (all
whole numbers: int; all numbers: float; else text, so `2026-12-01` stays the text it is);
`__HIVE_DEFAULT_PARTITION__` (Spark's null) is a missing value and a value is URL-unquoted
as Spark escapes it. A file's own column of a key's name is refused (which one is meant?)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kubetfx.components.example_gen import csv_input, data_format, example_bytes
from kubetfx.components.example_gen.csv_input import InputError

UNKNOWN, INT, FLOAT, STRING = example_bytes.UNKNOWN, example_bytes.INT, example_bytes.FLOAT, example_bytes.STRING
BATCH_ROWS = 64 * 1024
SAMPLE_ROWS = 10_000
READ_BUFFER_BYTES = 256 << 10  # per column: 256 MB for a table of 1,000 columns
_INT64_MAX = 2**63 - 1
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_WHOLE = re.compile(r"[+-]?\d{1,18}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def partition_values(path) -> dict:
    """{key: value or None} of the `key=value` folders directly above the file, outermost
    first. Names only: no folder is listed."""
    found = []
    for parent in Path(path).parents:
        if "=" not in parent.name or data_format.ignored(parent.name):
            break
        key, value = parent.name.split("=", 1)
        found.append((unquote(key), None if value == HIVE_NULL else unquote(value)))
    return dict(reversed(found))


def _value_kind(value) -> int:
    if value is None:
        return UNKNOWN
    if _WHOLE.fullmatch(value):
        return INT
    return FLOAT if _NUMBER.fullmatch(value) else STRING


def kind_of(path, field: pa.Field) -> int:
    """The tf.Example kind of a Parquet column, or an InputError naming it."""
    t = field.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return UNKNOWN
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return INT
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return FLOAT
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t)):
        return STRING
    if pa.types.is_nested(t):
        raise InputError(f"{path}: column {field.name!r} is nested ({t}); kubetfx reads flat columns, one value "
                         "per row: flatten it into columns or drop it")
    raise InputError(f"{path}: column {field.name!r} has the type {t}, which kubetfx does not turn into a "
                     "feature; cast it to a number or a string")


def open_file(path) -> pq.ParquetFile:
    """The file, its column chunks read through a READ_BUFFER_BYTES buffer each: unbuffered,
    Arrow reads a row group's whole column chunks into memory (a writer's one 300 MB row
    group: a 310 MB pool peak, 8 MB buffered, and no slower)."""
    if Path(path).stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): expected a Parquet file")
    try:
        return pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputError(f"{path} is not a Parquet file kubetfx can read: {str(err).splitlines()[0]}") from None


def file_kinds(path) -> dict:
    schema = open_file(path).schema_arrow
    kinds = {field.name: kind_of(path, field) for field in schema}
    for key, value in partition_values(path).items():
        if key in kinds:
            raise InputError(f"{path}: the column {key!r} is also its folder's partition key ({key}=...); "
                             "drop the column from the files or rename the folders")
        kinds[key] = _value_kind(value)
    return kinds


def _check_int64_range(path, schema: pa.Schema) -> None:
    """An unsigned 64-bit column's values above 2^63-1 fit no tf.Example int64 (the cast
    failed in ExampleGen with a traceback): refused, read a column at a time."""
    for field in schema:
        t = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if not pa.types.is_uint64(t):
            continue
        for batch in open_file(path).iter_batches(batch_size=BATCH_ROWS, columns=[field.name]):
            top = pc.max(_plain(batch.column(0))).as_py()
            if top is not None and top > _INT64_MAX:
                raise InputError(f"{path}: column {field.name!r} (unsigned 64-bit) holds {top}, more than a "
                                 f"tf.Example int64 holds ({_INT64_MAX}); cast it to a float or a string")


def check_files(files: list, label: str = "") -> list:
    """The column names, after refusing what the run could not read (each file's names,
    types and rows, and the same columns in every file)."""
    columns = None
    for path in files:
        schema = open_file(path).schema_arrow
        data_format.check_names(path, schema.names)
        kinds = file_kinds(path)  # a key that is also a column: refused there
        data_format.check_names(path, list(partition_values(path)), "partition key")
        these = list(kinds)
        _check_int64_range(path, schema)
        if columns is not None and sorted(these) != sorted(columns):
            raise InputError(f"{path} has other columns than {files[0]}: {these} vs {columns}; "
                             "files of one dataset must share the columns")
        columns = columns or these
        if open_file(path).metadata.num_rows == 0:
            raise InputError(f"{path} has a schema but no rows")
    return columns


def column_kinds(files: list, wanted: dict | None = None) -> dict:
    """{column: kind}, the widest over the files (int in one, float in another: float).
    `wanted` ({column: kind}, e.g. a served schema's types): a column is read as that kind
    when every value converts (ints as floats, anything as text, floats or text of whole
    numbers as ints), so new data written by another tool (pandas writes an int column with
    nulls as floats) is typed as the data it is compared with; else it keeps its own."""
    kinds = {}
    for path in files:
        for name, kind in file_kinds(path).items():
            kinds[name] = max(kinds.get(name, UNKNOWN), kind)
    for name, kind in kinds.items():
        want = (wanted or {}).get(name, kind)
        if want in (kind, UNKNOWN) or kind == UNKNOWN:
            continue
        if want == STRING or (want, kind) == (FLOAT, INT) or _converts(files, name, want):
            kinds[name] = want
    return kinds


def _converts(files: list, name: str, kind: int) -> bool:
    """Whether every value of the column converts to `kind` without loss (one pass over it)."""
    for path in files:
        parts = partition_values(path)
        if name in parts:
            values = [pa.array([parts[name]], pa.string())]
        else:
            values = (_plain(b.column(0)) for b in open_file(path).iter_batches(batch_size=BATCH_ROWS, columns=[name]))
        for column in values:
            try:
                typed(column, kind)  # a safe cast: 2.0 is 2, 1.5 is refused
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return False
    return True


def _plain(column: pa.Array) -> pa.Array:
    """Dictionary-decoded, a float NaN made a null (a missing value, as in CSV)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_floating(column.type) and column.null_count < len(column):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    return column


def typed(column: pa.Array, kind: int) -> pa.Array:
    """The column as example_bytes.serialize takes it for `kind`."""
    if kind == INT:
        return pc.cast(column, pa.int64())
    if kind == FLOAT:
        return pc.cast(pc.cast(column, pa.float64()), pa.float32(), safe=False)
    if kind == STRING:
        if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
                or pa.types.is_fixed_size_binary(column.type)):
            column = pc.cast(column, pa.string())  # numbers, dates and times as their text
        return pc.cast(column, pa.binary())
    return column


def batches(path, columns: list | None):
    """The file's rows, a bounded batch at a time, without rows of only missing values;
    its partition keys as text columns after the file's own (`columns` None: all)."""
    parts = partition_values(path)
    keys = list(parts) if columns is None else [c for c in columns if c in parts]
    own = None if columns is None else [c for c in columns if c not in parts]
    for batch in open_file(path).iter_batches(batch_size=BATCH_ROWS, columns=own):
        batch = pa.RecordBatch.from_arrays([_plain(c) for c in batch.columns], names=batch.schema.names)
        batch = csv_input.drop_blank_rows(batch)  # a row is blank by its own values
        if keys:
            batch = pa.RecordBatch.from_arrays(
                list(batch.columns) + [_constant(parts[k], batch.num_rows) for k in keys],
                names=batch.schema.names + keys)
        yield batch


def _constant(value, rows: int) -> pa.Array:
    return pa.nulls(rows, pa.string()) if value is None else pa.repeat(pa.scalar(value, pa.string()), rows)


def encoded_batches(files: list, wanted: dict | None = None):
    """(records, split keys) a batch at a time, in file order: serialized tf.Examples,
    each record its own split key; `wanted` as column_kinds takes it."""
    kinds = column_kinds(files, wanted)
    names = list(kinds)
    for path in files:
        for batch in batches(path, names):
            columns = {n: typed(batch.column(n), kinds[n]) for n in names}
            records = example_bytes.as_bytes(example_bytes.serialize(columns, kinds, batch.num_rows))
            yield records, records


def _label_values(column: pa.Array, kind: int) -> pa.Array:
    """The label as the checks count classes: numbers as numbers, the rest as text."""
    if kind == STRING:
        try:
            return pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pc.cast(column, pa.binary())
    return typed(column, kind) if kind != UNKNOWN else column


def label_column(files: list, label: str) -> pa.ChunkedArray:
    kind = column_kinds(files)[label]
    chunks = [_label_values(batch.column(label), kind) for path in files for batch in batches(path, None)]
    return pa.chunked_array(chunks) if chunks else pa.chunked_array([], pa.null())


def sample(files: list) -> pa.Table:
    """The first rows of the first file for column_roles: dates and times keep their type
    (a date/time role), strings are text."""
    reader = open_file(files[0])
    first = next(reader.iter_batches(batch_size=SAMPLE_ROWS), None)
    if first is None:
        return pa.table({})
    columns = {}
    for name, column in zip(first.schema.names, first.columns):
        column = _plain(column)
        if pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())
        elif pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
            column = pc.cast(column, pa.int64())
        columns[name] = column
    kinds = {}
    for path in files:  # a key's kind over every partition, as column_kinds says it
        for key, value in partition_values(path).items():
            kinds[key] = max(kinds.get(key, UNKNOWN), _value_kind(value))
    for key, value in partition_values(files[0]).items():
        column = _constant(value, first.num_rows)
        columns[key] = pc.cast(column, pa.int64() if kinds[key] == INT else pa.float64()) \
            if kinds[key] in (INT, FLOAT) else column
    return pa.table(columns)


def train_rows_of(files: list, label: str, classes: set) -> dict:
    """{class: rows the executor places in the train split} for the given classes."""
    from kubetfx.components.example_gen import executor

    kinds = column_kinds(files)
    names = list(kinds)
    boundaries, train = data_format.executor_splits()
    counts = {}
    for path in files:
        for batch in batches(path, names):
            values = _label_values(batch.column(label), kinds[label])
            wanted = pa.array(list(classes), values.type)
            rows = batch.filter(pc.fill_null(pc.is_in(values, value_set=wanted), False))
            if not rows.num_rows:
                continue
            columns = {n: typed(rows.column(n), kinds[n]) for n in names}
            records = example_bytes.as_bytes(example_bytes.serialize(columns, kinds, rows.num_rows))
            placed = executor.splits_of(records, boundaries).tolist()
            for value, split in zip(_label_values(rows.column(label), kinds[label]).to_pylist(), placed):
                if split == train:
                    counts[value] = counts.get(value, 0) + 1
    return counts

