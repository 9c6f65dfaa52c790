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

import functools
import gzip
import struct
from pathlib import Path

import google_crc32c
import pyarrow as pa
import pyarrow.compute as pc

from kubetfx.components.example_gen import csv_input, data_format
from kubetfx.components.example_gen.csv_input import InputError

BATCH_RECORDS = 16 * 1024
SAMPLE_RECORDS = 10_000
_GZIP_MAGIC = b"\x1f\x8b"
_MASK_DELTA = 0xA282EAD8
READ_BYTES = 8 << 20
MAX_RECORD_BYTES = 256 << 20  # a bound on one record's buffer; tf.Examples are far smaller


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _open(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def records(path):
    """Each record's bytes, in file order, read a bounded block at a time; a broken frame
    is an InputError naming the record and the file."""
    if Path(path).stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): expected TFRecords of tf.Examples")
    index = 0
    try:
        with _open(path) as f:
            buffer, at = b"", 0

            def available(size: int) -> bool:
                nonlocal buffer, at
                while len(buffer) - at < size:
                    chunk = f.read(max(READ_BYTES, size))
                    if not chunk:
                        return False
                    buffer, at = buffer[at:] + chunk, 0
                return True

            while available(1):
                if not available(12):
                    raise InputError(_broken(path, index, "cut off in its length"))
                length, length_crc = struct.unpack_from("<QI", buffer, at)
                if _masked_crc(buffer[at:at + 8]) != length_crc:
                    raise InputError(_broken(path, index, "its length fails its checksum"))
                if length > MAX_RECORD_BYTES:
                    raise InputError(_broken(path, index, f"a record of {length} bytes, more than a tf.Example "
                                                          f"here may hold ({MAX_RECORD_BYTES >> 20} MiB)"))
                if not available(16 + length):
                    raise InputError(_broken(path, index, "cut off"))
                start = at + 12
                data = buffer[start:start + length]
                if _masked_crc(data) != struct.unpack_from("<I", buffer, start + length)[0]:
                    raise InputError(_broken(path, index, "its data fails its checksum"))
                at = start + length + 4
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


def parse_with_protobuf(path, index: int, record: bytes, example_class=None):
    """The record parsed by protobuf as a tf.Example, or an InputError saying it cannot be."""
    from google.protobuf import message

    try:
        return (example_class or _example_class()).FromString(record)
    except message.DecodeError:
        raise InputError(f"{path}: record {index} is not a tf.Example (protobuf cannot parse it); "
                         "give TFRecords of serialized tf.Example protos") from None


def _check_fields(path, index: int, record: bytes) -> None:
    """A tf.Example has one field, `features` (1, length-delimited: tag 0x0a); any other
    top-level field (a SequenceExample's feature_lists, 2) is refused. Walks the record's
    top level only: a few steps a record."""
    at, size = 0, len(record)
    while at < size:
        if record[at] != 0x0A:
            parse_with_protobuf(path, index, record)  # names garbage as such
            raise InputError(f"{path}: record {index} is not a tf.Example: it has fields a tf.Example has not "
                             "(a tf.SequenceExample?); kubetfx reads TFRecords of tf.Examples")
        length = shift = 0
        at += 1
        while at < size:
            byte = record[at]
            length, shift, at = length | (byte & 0x7F) << shift, shift + 7, at + 1
            if byte < 0x80:
                break
        at += length
    if at != size:
        raise InputError(f"{path}: record {index} is not a tf.Example (protobuf cannot parse it); "
                         "give TFRecords of serialized tf.Example protos")


def examples(path, limit: int = 0):
    """(index, record, tf.Example) of each record, checked to be a tf.Example (protobuf's
    own parse: faster here than tfx_bsl's batch decoder, 4 vs 22 us a record); at most
    `limit` when given."""
    example_class = _example_class()
    for index, record in enumerate(records(path)):
        if limit and index >= limit:
            return
        _check_fields(path, index, record)
        yield index, record, parse_with_protobuf(path, index, record, example_class)


def _kinds_of(path, example, kinds: dict) -> None:
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind is None or not len(getattr(feature, kind).value):
            kinds.setdefault(name, None)
        elif kinds.setdefault(name, kind) not in (kind, None):
            raise InputError(f"{path}: feature {name!r} holds {kind} values here and {kinds[name]} elsewhere; "
                             "one feature, one kind")
        else:
            kinds[name] = kind


_ARROW_KINDS = {"int64_list": pa.int64(), "float_list": pa.float32(), "bytes_list": pa.binary()}


def _as_array(values: list, kind) -> pa.Array:
    array = pa.array(values, _ARROW_KINDS[kind] if kind else pa.null())
    if kind == "bytes_list":
        try:
            return pc.cast(array, pa.string())
        except pa.ArrowInvalid:
            return array
    return array


@functools.lru_cache(maxsize=2)
def _scan(files: tuple, states: tuple, label: str) -> tuple:
    """(feature names, the label's value per record): one pass over every record, each
    checked, with its features' names and kinds. Cached
    for the file states (sizes, mtimes): the checks, the task and the sample ask in turn."""
    kinds, values, label_kind = {}, [], None
    for path in files:
        count = 0
        for index, _, example in examples(path):
            count += 1
            _kinds_of(path, example, kinds)  # every record: a later one of another kind crashed a stage
            feature = example.features.feature.get(label)
            kind = feature.WhichOneof("kind") if feature is not None else None
            listed = getattr(feature, kind).value if kind else ()
            if len(listed) > 1:
                raise InputError(f"{path}: record {index} holds {len(listed)} values of {label!r}; "
                                 "a label is one value per example")
            if listed:
                if label_kind not in (None, kind):
                    raise InputError(f"{path}: record {index}: label {label!r} holds {kind} values here and "
                                     f"{label_kind} elsewhere; one label, one kind")
                label_kind = kind
            values.append(listed[0] if listed else None)
        if count == 0:
            raise InputError(f"{path} holds no records")
    data_format.check_names(files[0] if len(files) == 1 else Path(files[0]).parent, list(kinds), "feature")
    return sorted(kinds), _as_array(values, label_kind)


def _states(files: list) -> tuple:
    return tuple((str(p), Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in files)


def check_files(files: list, label: str = "") -> list:
    """The feature names, after refusing a file that is not TFRecords of tf.Examples or
    holds none, a feature of several kinds, and a label of several values."""
    return _scan(tuple(map(str, files)), _states(files), label)[0]


def label_column(files: list, label: str) -> pa.ChunkedArray:
    return pa.chunked_array([_scan(tuple(map(str, files)), _states(files), label)[1]])


def sample(files: list) -> pa.Table:
    """The first records' single values per feature for column_roles (a feature of
    several values in a record decides no role: left out)."""
    rows = [example for _, _, example in examples(files[0], SAMPLE_RECORDS)]
    kinds = {}
    for example in rows:
        _kinds_of(files[0], example, kinds)
    columns = {}
    for name, kind in sorted(kinds.items()):
        values = []
        for example in rows:
            feature = example.features.feature.get(name)
            listed = getattr(feature, kind).value if feature is not None and kind else ()
            if len(listed) > 1:
                break
            values.append(listed[0] if listed else None)
        else:
            if kind:
                columns[name] = _as_array(values, kind)
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
    from kubetfx.components.example_gen import executor

    boundaries, train = data_format.executor_splits()
    labels = label_column(files, label).to_pylist()
    chosen = [(value, record) for value, record in zip(labels, (r for path in files for r in records(path)))
              if value in classes]
    counts = {}
    placed = executor.splits_of([r for _, r in chosen], boundaries).tolist() if chosen else []
    for (value, _), split in zip(chosen, placed):
        if split == train:
            counts[value] = counts.get(value, 0) + 1
    return counts
