"""Writers of test data in the formats `--data` takes besides CSV: Parquet (pyarrow) and
TFRecords (TFRecord framing written here, as tensorflow/core/lib/io/record_writer.cc
writes it, so bad-input cases need no TensorFlow)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import google_crc32c
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def framed(records: list) -> bytes:
    out = bytearray()
    for record in records:
        length = struct.pack("<Q", len(record))
        out += length + struct.pack("<I", _masked_crc(length)) + record + struct.pack("<I", _masked_crc(record))
    return bytes(out)


def write_tfrecords(path: Path, records: list, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = framed(records)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def write_partitioned(root: Path, parts: dict, shard: int = 7) -> Path:
    """{dt: table} as Spark writes `df.write.partitionBy("dt", "shard").parquet(root)`:
    `dt=<dt>/shard=<shard>/part-0000N-<uuid>.c000.snappy.parquet`, the `_SUCCESS` marker,
    Databricks' `_started_*`/`_committed_*` and Hadoop's hidden `.crc` beside each file."""
    for i, (dt, table) in enumerate(parts.items()):
        folder = root / f"dt={dt}" / f"shard={shard}"
        name = f"part-{i:05d}-5e1d2c9a-0b4f-4c1e-9d2a-1f3b5c7d9e0{i}.c000.snappy.parquet"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / name, compression="snappy")
        (folder / f".{name}.crc").write_bytes(b"crc\0")
        (folder / "_started_4410").write_text("")
        (folder / "_committed_4410").write_text('{"added":["%s"],"removed":[]}' % name)
    (root / "_SUCCESS").write_text("")
    return root


def csv_table(csv_path) -> pa.Table:
    """A CSV file as Arrow reads it with kubetfx's missing-value markers (types inferred)."""
    from kubetfx.components.example_gen import csv_input

    return pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(
        null_values=csv_input.NULL_VALUES, strings_can_be_null=True))


def example(**features) -> bytes:
    """A serialized tf.Example of {name: int | float | str | list}."""
    from tensorflow.core.example import example_pb2

    out = example_pb2.Example()
    for name, value in features.items():
        values = value if isinstance(value, list) else [value]
        feature = out.features.feature[name]
        if all(isinstance(v, int) for v in values):
            feature.int64_list.value.extend(values)
        elif all(isinstance(v, (int, float)) for v in values):
            feature.float_list.value.extend(values)
        else:
            feature.bytes_list.value.extend(v.encode() for v in values)
    return out.SerializeToString()


def sequence_example() -> bytes:
    from tensorflow.core.example import example_pb2

    out = example_pb2.SequenceExample()
    out.context.feature["species"].bytes_list.value.append(b"Adelie")
    out.feature_lists.feature_list["steps"].feature.add().int64_list.value.append(1)
    return out.SerializeToString()


def penguin_examples(csv_path) -> list:
    """The rows of a CSV file as the CSV ExampleGen serializes them."""
    from kubetfx.components.example_gen import executor

    return list(executor.examples_from_csv([Path(csv_path)]))
