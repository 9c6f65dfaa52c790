"""TFRecords of tf.Examples in: what TFX users already have (another pipeline's Examples,
a `tf.io.TFRecordWriter`'s output). ImportExampleGen's semantics: each record is imported
byte for byte and placed in a split by the hash of its bytes (tfx 1.16
import_example_gen/executor.py, base_example_gen_executor._PartitionFn), so a feature
holding an empty list stays one (TFDV and Transform read it as missing).

Files are read here, not by TensorFlow, so the checks before a run stay light: the
TFRecord framing (length, masked CRC32C of the length, data, masked CRC32C of the data;
tensorflow/core/lib/io/record_writer.cc) is walked with every CRC checked, GZIP files
told from their magic bytes whatever their name (TFX writes `*.gz`). Every record must be
a tf.Example: one protobuf cannot parse is refused, and so is one that parses but carries
fields a tf.Example has not (a SequenceExample's `feature_lists`, field 2, parses as an
Example whose context is its features and would be silently cut to it)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import google_crc32c
import pyarrow as pa
import pyarrow.compute as pc

from kubetfx.components.example_gen import csv_input
from kubetfx.components.example_gen.csv_input import InputError

BATCH_RECORDS = 16 * 1024
SAMPLE_RECORDS = 10_000
_GZIP_MAGIC = b"\x1f\x8b"
_MASK_DELTA = 0xA282EAD8


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _open(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def records(path):
    """Each record's bytes, in file order; a broken frame is an InputError naming the
    record and the file."""
    if Path(path).stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): expected TFRecords of tf.Examples")
    index = 0
    try:
        with _open(path) as f:
            while True:
                header = f.read(12)
                if not header:
                    return
                if len(header) < 12:
                    raise InputError(_broken(path, index, "cut off in its length"))
                length, length_crc = struct.unpack("<QI", header)
                if _masked_crc(header[:8]) != length_crc:
                    raise InputError(_broken(path, index, "its length fails its checksum"))
                data, footer = f.read(length), f.read(4)
                if len(data) < length or len(footer) < 4:
                    raise InputError(_broken(path, index, "cut off"))
                if _masked_crc(data) != struct.unpack("<I", footer)[0]:
                    raise InputError(_broken(path, index, "its data fails its checksum"))
                yield data
                index += 1
    except (OSError, EOFError, gzip.BadGzipFile) as err:  # a gzip stream cut off or corrupt
        raise InputError(f"{path} cannot be read as (gzip) TFRecords at record {index}: {err}") from None


def _broken(path, index: int, what: str) -> str:
    if index == 0:
        return f"{path} is not a TFRecord file (its first record's frame is wrong: {what})"
    return f"{path} is damaged at record {index}: {what}"


def _example_class():
    with csv_input._import_noise_hidden():  # TensorFlow's package, imported for its proto
        from tensorflow.core.example import example_pb2
    return example_pb2.Example


def parse(path, index: int, record: bytes, example_class=None):
    """The record as a tf.Example, or an InputError saying what else it is."""
    from google.protobuf import message, unknown_fields

    example = (example_class or _example_class())()
    try:
        example.ParseFromString(record)
    except message.DecodeError:
        raise InputError(f"{path}: record {index} is not a tf.Example (protobuf cannot parse it); "
                         "give TFRecords of serialized tf.Example protos") from None
    if len(unknown_fields.UnknownFieldSet(example)):
        raise InputError(f"{path}: record {index} is not a tf.Example: it has fields a tf.Example has not "
                         "(a tf.SequenceExample?); kubetfx reads TFRecords of tf.Examples")
    return example


def examples(path, limit: int = 0):
    """(index, tf.Example) of each record, checked (at most `limit` when given)."""
    example_class = _example_class()
    for index, record in enumerate(records(path)):
        if limit and index >= limit:
            return
        yield index, parse(path, index, record, example_class)


def check_files(files: list) -> list:
    """The feature names over all records of all files, after refusing a file that is not
    TFRecords of tf.Examples or holds none."""
    names = set()
    for path in files:
        count = 0
        for _, example in examples(path):
            names.update(example.features.feature.keys())
            count += 1
        if count == 0:
            raise InputError(f"{path} holds no records")
    return sorted(names)


_KINDS = {"int64_list": pa.int64(), "float_list": pa.float32(), "bytes_list": pa.binary()}


def _first_values(files: list, name: str, limit: int = 0, one_value: bool = True) -> pa.Array:
    """The feature's value in each record (None where missing or empty) as an Arrow array
    of its kind; a label of several values or of mixed kinds is refused."""
    values, kinds = [], set()
    for path in files:
        for index, example in examples(path, limit):
            feature = example.features.feature.get(name)
            kind = feature.WhichOneof("kind") if feature is not None else None
            listed = list(getattr(feature, kind).value) if kind else []
            if one_value and len(listed) > 1:
                raise InputError(f"{path}: record {index} holds {len(listed)} values of {name!r}; "
                                 "a label is one value per example")
            if listed:
                kinds.add(kind)
            values.append(listed[0] if listed else None)
            if limit and len(values) >= limit:
                break
        if limit and len(values) >= limit:
            break
    if len(kinds) > 1:
        raise InputError(f"feature {name!r} has values of several kinds ({', '.join(sorted(kinds))}) in {files[0]}"
                         f"{' ...' if len(files) > 1 else ''}; one feature, one kind")
    kind = _KINDS[kinds.pop()] if kinds else pa.null()
    array = pa.array(values, kind)
    if kind == pa.binary():
        try:
            return pc.cast(array, pa.string())
        except pa.ArrowInvalid:
            return array
    return array


def label_column(files: list, label: str) -> pa.ChunkedArray:
    return pa.chunked_array([_first_values(files, label)])


def sample(files: list) -> pa.Table:
    """The first records' single values per feature for column_roles (a feature of
    several values per record decides no role: left out)."""
    names = set()
    for _, example in examples(files[0], SAMPLE_RECORDS):
        names.update(example.features.feature.keys())
    columns = {}
    for name in sorted(names):
        try:
            columns[name] = _first_values(files[:1], name, SAMPLE_RECORDS)
        except InputError:
            continue
    return pa.table(columns)


def encoded_batches(files: list):
    """(records, split keys) a bounded batch at a time: each record as it is, its own key."""
    for path in files:
        batch = []
        for record in records(path):
            batch.append(record)
            if len(batch) == BATCH_RECORDS:
                yield batch, batch
                batch = []
        if batch:
            yield batch, batch


def train_rows_of(files: list, label: str, classes: set) -> dict:
    """{class: records the executor places in the train split} for the given classes."""
    from kubetfx.components.example_gen import data_format, executor

    boundaries, train = data_format.executor_splits()
    labels = _first_values(files, label).to_pylist()
    chosen, counts = [], {}
    position = 0
    for path in files:
        for record in records(path):
            if labels[position] in classes:
                chosen.append((labels[position], record))
            position += 1
    placed = executor.splits_of([r for _, r in chosen], boundaries).tolist() if chosen else []
    for (value, _), split in zip(chosen, placed):
        if split == train:
            counts[value] = counts.get(value, 0) + 1
    return counts
