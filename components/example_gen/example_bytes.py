"""tf.Examples serialized from typed Arrow columns a whole column at a time, in the
deterministic byte form protobuf writes for `SerializeToString(deterministic=True)` (map
entries in the order the installed protobuf sorts them: key_order), which is what TFX
hashes to assign splits.

Before, each batch went through tfx_bsl's C++ coder (one protobuf per row, its feature map
in hash order) and then through a Python parse and deterministic re-serialization per row:
2.2 + 2.3 s of ExampleGen's ~10 s at 1M rows here. The wire format of a tf.Example is
small and fixed (tensorflow/core/example/{example,feature}.proto), so the bytes are built
with Arrow's element-wise joins over whole columns instead; the tests compare them with
protobuf's own serialization, value kind by value kind, and every run compares its first
record once more (differs_from_protobuf): a protobuf that writes otherwise after an
upgrade sends the run to the stock executor instead of writing examples TFX would hash,
and so split, differently.

A missing value (a null) is left out of its row's Example: kubetfx's one representation of
a missing value, the one a request that leaves the field out has. CsvExampleGen's empty
list is still written on request (missing_as_empty_list), for the split hash only.

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }   each entry: { key = 1; value = 2; }
    Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    *List    { repeated value = 1; }                 float and int64 packed
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tensorflow.core.example import example_pb2

# Column kinds, as the executor names them (narrowest first).
UNKNOWN, INT, FLOAT, STRING = range(4)

# Tags of fields 1, 2 and 3 as length-delimited fields (wire type 2).
_FIELD_1, _FIELD_2, _FIELD_3 = b"\x0a", b"\x12", b"\x1a"
_LIST_TAG = {STRING: _FIELD_1, FLOAT: _FIELD_2, INT: _FIELD_3}
_NOTHING = pa.scalar(b"", pa.binary())


def _scalar(data: bytes) -> pa.Scalar:
    return pa.scalar(data, pa.binary())


def _join(*parts) -> pa.Array:
    """Per row, the parts' bytes one after the other (scalars repeat on every row)."""
    return pc.binary_join_element_wise(*parts, _NOTHING)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes in each value's varint (values as uint64)."""
    sizes = np.ones(len(values), dtype=np.int32)
    for shift in range(7, 64, 7):
        above = values >= np.uint64(1 << shift)
        if not above.any():
            break
        sizes += above
    return sizes


def varints(values: np.ndarray) -> pa.Array:
    """Each value's base-128 varint (values as uint64: a negative int64 takes 10 bytes, as
    protobuf writes it)."""
    values = np.asarray(values).astype(np.int64, copy=False).view(np.uint64)
    if not len(values) or values.max() < 0x80:  # the common case: lengths, small integers
        data, sizes = values.astype(np.uint8), np.ones(len(values), dtype=np.int32)
    else:
        sizes = varint_sizes(values)
        widest = int(sizes.max())
        groups = np.empty((len(values), widest), dtype=np.uint8)
        for i in range(widest):
            group = ((values >> np.uint64(7 * i)) & np.uint64(0x7F)).astype(np.uint8)
            groups[:, i] = group | ((i < sizes - 1).astype(np.uint8) << 7)
        data = groups[np.arange(widest) < sizes[:, None]]  # row by row, each its own bytes
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _lengths(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.binary_length(array)).astype(np.uint64)


def _fixed_width(values: np.ndarray) -> pa.Array:
    """Each element's little-endian bytes (what packed float fields hold)."""
    width = values.dtype.itemsize
    offsets = (np.arange(len(values) + 1) * width).astype(np.int32)
    data = np.ascontiguousarray(values.astype(values.dtype.newbyteorder("<"), copy=False))
    return pa.Array.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data.view(np.uint8))])


def _key_field(name: str) -> bytes:
    """A map entry's key field, and the tag of its value field after it."""
    key = name.encode("utf-8")
    return _FIELD_1 + varint(len(key)) + key + _FIELD_2


def _constant_entry(name: str, feature: bytes) -> bytes:
    body = _key_field(name) + varint(len(feature)) + feature
    return _FIELD_1 + varint(len(body)) + body


def _by_size(prefixes: dict, sizes: np.ndarray) -> pa.Array:
    """Per row, the prefix for its value's size (a handful of distinct sizes)."""
    return pa.array([prefixes.get(s, b"") for s in range(max(prefixes) + 1)], pa.binary()).take(pa.array(sizes))


def _present_entries(name: str, column: pa.Array, kind: int) -> pa.Array:
    """The map entry {key: name, value: Feature holding the row's one value} of each row,
    as a field of Features; every length computed before the bytes, so one join a column."""
    if kind == FLOAT:
        values = np.asarray(column.fill_null(0), dtype=np.float32)
        return _join(_scalar(_constant_entry(name, _FIELD_2 + b"\x06" + _FIELD_1 + b"\x04" + bytes(4))[:-4]),
                     _fixed_width(values))
    if kind == INT:
        encoded = varints(np.asarray(column.fill_null(0), dtype=np.int64))
        sizes = np.asarray(pc.binary_length(encoded))  # 1-10 bytes: ten possible prefixes
        prefixes = {n: _constant_entry(name, _FIELD_3 + varint(n + 2) + _FIELD_1 + varint(n) + bytes(n))[:-n]
                    for n in range(1, 11)}
        return _join(_by_size(prefixes, sizes), encoded)
    values = column.cast(pa.binary()).fill_null(b"")
    value = _lengths(values)
    bytes_list = 1 + varint_sizes(value) + value
    feature = 1 + varint_sizes(bytes_list) + bytes_list
    key = _key_field(name)
    body = len(key) + varint_sizes(feature) + feature
    return _join(_scalar(_FIELD_1), varints(body), _scalar(key), varints(feature), _scalar(_FIELD_1),
                 varints(bytes_list), _scalar(_FIELD_1), varints(value), values)


def _missing_entry(name: str, kind: int) -> bytes:
    """CsvExampleGen's form of a missing value: an empty list of the column's kind, or an
    empty Feature for a column of no kind."""
    return _constant_entry(name, b"" if kind == UNKNOWN else _LIST_TAG[kind] + b"\x00")


def _entries(name: str, column: pa.Array, kind: int, missing_as_empty_list: bool = False) -> pa.Array:
    """Each row's map entry: its value, or nothing where the value is missing (the feature
    is absent from that row's Example, as from a request that leaves the field out);
    with missing_as_empty_list, CsvExampleGen's form instead (_missing_entry)."""
    missing = _missing_entry(name, kind) if missing_as_empty_list else b""
    if kind == UNKNOWN or column.null_count == len(column):
        return pa.array([missing] * len(column), pa.binary())
    present = _present_entries(name, column, kind)
    if column.null_count == 0:
        return present
    return pc.if_else(column.is_valid(), present, _scalar(missing))


def _read_varint(data: bytes, at: int) -> tuple:
    value = shift = 0
    while True:
        byte = data[at]
        value, shift, at = value | (byte & 0x7F) << shift, shift + 7, at + 1
        if byte < 0x80:
            return value, at


def key_order(names: list) -> list:
    """The names in the order the installed protobuf's deterministic serialization writes
    map keys, read back from a probe Example. The runtimes differ: C++ protobuf (and 3.20,
    the Python 3.10 lock's) sorts keys bytewise; upb (4.x, the 3.11 lock's) sorts them
    bytewise but puts a longer key before its own prefix ("nothing" before "n";
    upb/message/internal/map_sorter.h _upb_mapsorter_cmpstr negates memcmp and the encoder
    writes the sorted entries backwards). TFX hashes whatever its runtime writes."""
    probe = example_pb2.Example()
    for name in names:
        probe.features.feature[name].SetInParent()
    data = probe.SerializeToString(deterministic=True)
    _, at = _read_varint(data, 1)  # Example.features: tag, length
    order = []
    while at < len(data):
        entry_length, at = _read_varint(data, at + 1)  # Features.feature: tag, length
        key_length, key_at = _read_varint(data, at + 1)  # entry.key: tag, length
        order.append(data[key_at:key_at + key_length].decode("utf-8"))
        at += entry_length
    return order


def serialize(columns: dict, kinds: dict, rows: int, missing_as_empty_list: bool = False) -> pa.Array:
    """Serialized tf.Examples, one per row, of {name: Arrow array typed for its kind}:
    int64 for INT, float32 for FLOAT, binary for STRING, anything for UNKNOWN (no value).
    A null is a missing value: the feature is left out of that row's Example (kubetfx's one
    representation of a missing value), or with missing_as_empty_list written as
    CsvExampleGen writes it (what TFX hashes to assign the row's split). Bytes equal
    protobuf's deterministic serialization of the same Example."""
    names = key_order(list(columns))
    if not names:
        return pa.array([b""] * rows, pa.binary())
    entries = [_entries(n, columns[n], kinds[n], missing_as_empty_list) for n in names]
    features = _join(*entries) if len(entries) > 1 else entries[0]
    return _join(_scalar(_FIELD_1), varints(_lengths(features)), features)


def as_bytes(records: pa.Array) -> list:
    """The records as Python bytes, from one copy of the array's data."""
    validity, offsets, data = records.buffers()
    ends = np.frombuffer(offsets, dtype=np.int32)[records.offset:records.offset + len(records) + 1].tolist()
    blob = data.to_pybytes() if data is not None else b""
    return [blob[start:end] for start, end in zip(ends, ends[1:])]


def differs_from_protobuf(record: bytes):
    """None when the installed protobuf, parsing `record` and serializing it again
    deterministically, writes the same bytes; else what differs, in a few words. The run's
    self-check on its first record: cheap (one Example), and what TFX hashes is exactly
    protobuf's form."""
    try:
        again = example_pb2.Example.FromString(record).SerializeToString(deterministic=True)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError differs by runtime (C++, upb, Python)
        return f"protobuf cannot parse it ({type(err).__name__})"
    if again == record:
        return None
    at = next((i for i, (a, b) in enumerate(zip(again, record)) if a != b), min(len(again), len(record)))
    return f"protobuf writes {len(again)} bytes, example_bytes {len(record)}, first difference at byte {at}"
