"""Which format `--data` holds (CSV, Parquet, or tf.Example TFRecords) and the questions a
run asks of it before any stage starts, each put to that format's reader: the files (with
csv_input's refusals of dangling links, devices and unreadable files), the checks, the
task, a sample for the column roles, and ExampleGen's input pattern.

A format is told by the file names, so a folder's format is clear before any byte is read
and one folder holds one format: a folder mixing CSV and Parquet files is refused (which
half is the dataset?) instead of read in part. A single file of another name is CSV, as
before, unless its first bytes are Parquet's magic or a TFRecord frame (gzip or not)."""
from __future__ import annotations

import collections
import unicodedata
from pathlib import Path
from typing import Optional

import pyarrow as pa

from kubetfx.components.example_gen import csv_input
from kubetfx.components.example_gen.csv_input import InputError

CSV, PARQUET, TFRECORD = "csv", "parquet", "tfrecord"  # as config.data_format names them
NAMES = {CSV: "CSV", PARQUET: "Parquet", TFRECORD: "TFRecord"}
# ExampleGen's input pattern for a folder of each format; TFX's own Examples are
# `data_tfrecord-00000-of-00001.gz`, so a TFRecord file is any name holding "tfrecord".
FOLDER_PATTERNS = {CSV: "*.csv", PARQUET: "*.parquet", TFRECORD: "*tfrecord*"}


def format_of_name(name: str) -> Optional[str]:
    lower = name.lower()
    if lower.endswith(".csv"):
        return CSV
    if lower.endswith((".parquet", ".parq", ".pq")):
        return PARQUET
    if "tfrecord" in lower:
        return TFRECORD
    return None


def format_of_file(path) -> str:
    path = Path(path)
    named = format_of_name(path.name)
    if named is not None:
        return named
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head == b"PAR1":
            return PARQUET
        return TFRECORD if _tfrecord_frame(path, head) else CSV
    except OSError:
        return CSV  # csv_input.csv_files names why it cannot be read


def _tfrecord_frame(path, head: bytes) -> bool:
    """Whether the file (gzip or not) opens with a TFRecord frame whose length passes its
    checksum: a one-in-four-billion accident for text, so a Spark or TensorFlow file
    named `part-00000` is read as the TFRecords it is."""
    import gzip
    import struct

    from kubetfx.components.example_gen import tfrecord_input

    try:
        with (gzip.open(path, "rb") if head[:2] == b"\x1f\x8b" else open(path, "rb")) as f:
            frame = f.read(12)
    except (OSError, EOFError):
        return False
    return len(frame) == 12 and tfrecord_input._masked_crc(frame[:8]) == struct.unpack("<I", frame[8:])[0]


# A table partitioned as Spark, Hive and warehouses write it: `dt=2026-12-01/part-0.parquet`,
# with `_SUCCESS`, `_committed_*`/`_started_*` (Databricks) and `.crc` (Hadoop) beside.
PARTITION_FILES_MAX = 100_000  # a folder listing is held in memory: bounded


def ignored(name: str) -> bool:
    """Markers, checksums and writers' temporary folders (`_temporary`, `.spark-staging`),
    as Spark and Hadoop skip them (names starting `_` or `.`)."""
    return name.startswith(("_", ".")) or name.endswith(".crc")


def partitioned_files(data: str) -> Optional[tuple]:
    """(key names, sorted Parquet files) of a Hive-style partitioned folder, None for a
    folder without `key=value` sub-folders. A layout that is not one table is refused in
    one line: data files beside the partition folders, other keys in one branch, a
    sub-folder not named key=value, a file that is not Parquet."""
    root = Path(data)
    if not any(c.is_dir() and "=" in c.name and not ignored(c.name) for c in root.iterdir()):
        return None
    if (root / "_delta_log").is_dir():
        raise InputError(f"{data} is a Delta table (_delta_log): its folder holds removed files too; "
                         "export a snapshot (df.write.parquet) and give that folder")
    files, keys = [], None
    pending = collections.deque([(root, ())])  # breadth first: sorted names, first found first
    while pending:
        folder, path_keys = pending.popleft()
        entries = [c for c in sorted(folder.iterdir()) if not ignored(c.name)]
        subfolders = [c for c in entries if c.is_dir()]
        leaves = [c for c in entries if not c.is_dir()]
        if subfolders and leaves:
            raise InputError(f"{folder} holds both files ({leaves[0].name}) and partition folders "
                             f"({subfolders[0].name}): put every file in a key=value folder or none")
        for sub in subfolders:
            if "=" not in sub.name:
                raise InputError(f"{sub} is not a key=value partition folder: a partitioned table's folders "
                                 "are named like dt=2026-12-01; move it out")
            pending.append((sub, path_keys + (sub.name.split("=", 1)[0],)))
        for leaf in leaves:
            if format_of_name(leaf.name) != PARQUET:
                raise InputError(f"{leaf} is not a Parquet file (.parquet) inside the partitioned folder {data}; "
                                 "move it out (kubetfx reads partitioned folders of Parquet)")
            if keys is not None and path_keys != keys:
                raise InputError(f"{data} has other partition keys in {leaf.parent.relative_to(root)} than in "
                                 f"{files[0].parent.relative_to(root)}: {'/'.join(path_keys)} vs {'/'.join(keys)}; "
                                 "one table has one partition layout")
            keys = path_keys
            files.append(leaf)
            if len(files) > PARTITION_FILES_MAX:
                raise InputError(f"{data} holds more than {PARTITION_FILES_MAX} Parquet files; compact them "
                                 "(df.repartition(n).write) and give that folder")
    if not files:
        raise InputError(f"{data} holds partition folders but no Parquet file in them")
    return keys, sorted(files)


def data_files(data: str) -> tuple:
    """(format, sorted files) of a file or folder. A folder's files are those of its one
    format; another format beside them is refused in one line. A folder of Hive-style
    partitions (partitioned_files) is Parquet, its files those of every partition."""
    path = Path(data)
    if not path.exists() or not path.is_dir():
        files = csv_input.csv_files(data)  # missing path, dangling link, device, unreadable
        return format_of_file(files[0]), files
    partitioned = partitioned_files(data)
    if partitioned is not None:
        return PARQUET, csv_input.readable(csv_input.regular_files(partitioned[1]))
    found = {}
    for candidate in sorted(path.iterdir()):
        kind = format_of_name(candidate.name)
        if kind is not None:
            found.setdefault(kind, []).append(candidate)
    if len(found) > 1:
        shown = ", ".join(f"{NAMES[kind]} ({found[kind][0].name}{' ...' if len(found[kind]) > 1 else ''})"
                          for kind in sorted(found))
        raise InputError(f"folder {data} mixes data formats: {shown}; keep one format per folder "
                         "(move the others out)")
    kind = next(iter(found), CSV)
    if kind == CSV:
        return CSV, csv_input.csv_files(data)
    return kind, csv_input.readable(csv_input.regular_files(found[kind]))


def format_of(data: str) -> str:
    """The data's format, CSV for a location only the cluster sees (checked there)."""
    try:
        return data_files(data)[0]
    except (InputError, OSError):
        return CSV


def partitioned_pattern(data: str) -> Optional[str]:
    """ExampleGen's input pattern of a partitioned folder (`*=*/*=*/*.parquet` for two
    keys), None for other data: a glob TFX's driver (its fingerprint) and the executor
    take alike."""
    path = Path(data)
    try:
        partitioned = partitioned_files(data) if path.is_dir() else None
    except (InputError, OSError):
        return None
    return None if partitioned is None else "*=*/" * len(partitioned[0]) + FOLDER_PATTERNS[PARQUET]


def input_pattern(data: str, kind: Optional[str] = None, pattern: Optional[str] = None) -> tuple:
    """(input_base, pattern) of ExampleGen's one input split; `kind` and `pattern` for a
    location only the cluster sees (the compiled spec's data_root: both were read from the
    local data when the run was prepared)."""
    path = Path(data)
    if path.is_file():
        return str(path.parent), path.name
    return str(path), pattern or partitioned_pattern(data) or FOLDER_PATTERNS[kind or format_of(data)]


def _reader(kind: str):
    if kind == PARQUET:
        from kubetfx.components.example_gen import parquet_input
        return parquet_input
    from kubetfx.components.example_gen import tfrecord_input
    return tfrecord_input


def check(data: str, label: str, task: Optional[str] = None, rare_in_train: str = "fail") -> Optional[str]:
    """csv_input.check for any format: the same refusals, the same warning."""
    kind, files = data_files(data)
    if kind == CSV:
        return csv_input.check(data, label, task, rare_in_train)
    reader = _reader(kind)
    columns = reader.check_files(files, label)
    if label not in columns:
        alike = [c for c in columns if c.strip().casefold() == label.strip().casefold()]
        hint = f" (not {', '.join(map(repr, alike))}: names must match exactly)" if alike else ""
        raise InputError(f"label column {label!r} is not in {data}{hint}; columns: {', '.join(columns)}")
    labels = reader.label_column(files, label)
    if labels.null_count == len(labels):
        raise InputError(f"label column {label!r} has no values in {data}")
    present = labels.drop_null()
    if (task or task_of(present)) == "classification":
        csv_input._check_classes(present, label, data)
        problem = _rare_in_train(reader, files, label, present)
        if problem and rare_in_train != "warn":
            raise InputError(problem)
        return problem
    return None


def check_names(path, names: list, what: str = "column") -> None:
    """Names a feature can carry through every stage and every one-line message: none
    empty, blank or holding control or invisible characters (a newline, a zero-width
    space), none twice, also once Unicode-normalized ('café' typed two ways is two
    features a reader cannot tell apart). As CSV refuses an unnamed column."""
    for name in names:
        if not name.strip():
            raise InputError(f"{path}: a {what} has {'no' if not name else 'a blank'} name ({name!r}); name every {what}")
        odd = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")), None)
        if odd is not None:
            raise InputError(f"{path}: the {what} name {name!r} holds the control or invisible character "
                             f"U+{ord(odd):04X}; rename it")
    normalized = [unicodedata.normalize("NFC", n) for n in names]
    same = sorted({repr(n) for n, m in zip(names, normalized) if normalized.count(m) > 1})
    if same:
        raise InputError(f"{path} has duplicate {what} names{' (once Unicode-normalized)' if len(set(names)) == len(names) else ''}: "
                         f"{', '.join(same)}")


def check_unlabelled(data: str) -> tuple:
    """(format, files) of new data that need not carry the label (monitor's): the checks
    of `check` that ask for no label (the files, their bytes, the same columns in each,
    each TFRecord a tf.Example), each a one-line InputError. Light: no TensorFlow import
    but the tf.Example proto's."""
    try:
        kind, files = data_files(data)
    except OSError as err:  # a folder that cannot be listed
        raise InputError(f"{data} cannot be read: {err.strerror or err}") from None
    if kind != CSV:
        _reader(kind).check_files(files)
        return kind, files
    columns = None
    for path in files:  # a duplicate column was a KeyError traceback, a semicolon file one
        csv_input._check_bytes(path)  # unknown column and a verdict of "ok"
        these = csv_input._check_header(path)
        if columns is not None and these != columns:
            raise InputError(f"{path} has other columns than {files[0]}: {these} vs {columns}; "
                             "files of one dataset must share the header")
        columns = these
    return kind, files


def task_of(labels) -> str:
    """As csv_input's rule on typed values: strings, booleans and integers of at most 20
    distinct values are classes; other numbers a regression target."""
    if pa.types.is_integer(labels.type) or pa.types.is_boolean(labels.type):
        return "classification" if len(labels.unique()) <= 20 else "regression"
    if pa.types.is_floating(labels.type):
        return "regression"
    return "classification"


def infer_task(data: str, label: str) -> str:
    kind, files = data_files(data)
    if kind == CSV:
        return csv_input.infer_task(data, label)
    return task_of(_reader(kind).label_column(files, label).drop_null())


def sample(data: str) -> Optional[pa.Table]:
    """The rows column_roles decides from (None: it reads CSV itself)."""
    kind, files = data_files(data)
    return None if kind == CSV else _reader(kind).sample(files)


def _rare_in_train(reader, files: list, label: str, labels) -> Optional[str]:
    """csv_input.rare_classes_in_train with rows placed as this format's reader places them."""
    import pyarrow.compute as pc

    counts = pc.value_counts(labels)
    if pc.min(counts.field("counts")).as_py() >= csv_input._CERTAIN_ENOUGH_ROWS:
        return None
    rare = {v for v, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())
            if n < csv_input._CERTAIN_ENOUGH_ROWS}
    with csv_input._import_noise_hidden():  # TensorFlow, through the executor: only when needed
        executor_splits()
    per_class = reader.train_rows_of(files, label, rare)
    return csv_input.rare_classes_message(label, {c: per_class.get(c, 0) for c in rare})


def executor_splits() -> tuple:
    """(hash bucket boundaries, index of "train") of ExampleGen's split config."""
    import numpy as np

    from kubetfx.components.example_gen import executor

    names = [name for name, _ in executor.DEFAULT_SPLITS]
    return list(np.cumsum([buckets for _, buckets in executor.DEFAULT_SPLITS])), names.index("train")
