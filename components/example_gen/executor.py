"""ExampleGen executor for CSV: stock CsvExampleGen parses and converts row by row in a
Beam pipeline (~5k rows/s here: 192 s for 1M rows). This one streams each file through
Arrow's C++ CSV reader, serializes whole columns to tf.Examples (example_bytes.py),
and assigns splits exactly as TFX does (sha256 of the serialized example, hash buckets),
writing the same artifact (GZIP TFRecords per split, same properties) with the same
examples: every value typed as CsvExampleGen types it, but for the differences kubetfx
means (a missing value left out of the Example instead of an empty list, missing-value
markers, header quoting: components/README.md; compared input by input in
tests/tfx_contract/test_example_gen_contract.py). Rows land in the splits CsvExampleGen
gives them (split_keys). Memory stays bounded: files
are read in blocks, twice (types first, then rows). Files are read as `csv_input` reads
them before the run (CSV as R, pandas, Excel and database exports write it; see there),
which CsvExampleGen does not: it keeps blank `,,,` rows as examples, an unnamed
row-number column as a feature, and "NA" as a string.

Parquet and TFRecords of tf.Examples take the same path (data_format.py tells the format
from the file names): parquet_input.py serializes typed columns with example_bytes as CSV's
are, tfrecord_input.py hands on each record as it is; both into the same splits, each
record hashed as TFX hashes it.

Anything but a single input split hashed into output splits (the kubetfx default), or
Beam args for any runner or mode but the in-process one (beam_runner.py), is
handed to the stock executor of the format unchanged (CsvExampleGen's, TFX's Parquet
custom executor, ImportExampleGen's), and so is a CSV run whose first record differs from
protobuf's own serialization of it (example_bytes.differs_from_protobuf, one log line)."""
from __future__ import annotations

import glob
import hashlib
import itertools
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from absl import logging
from tfx.components.example_gen import write_split
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from kubetfx.components import beam_runner, prefetch, upstream_seams
from kubetfx.components.example_gen import csv_input, data_format, example_bytes
from kubetfx.components.example_validator.executor import DataRejectedError

BLOCK_BYTES = 16 << 20
# zlib level 1 instead of the default 6: writing 1M rows takes 0.8 s instead of 2.1 s, for
# files ~12% larger. Still GZIP TFRecords: every reader is unchanged.
GZIP = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)

# Column kinds as CsvExampleGen infers them, narrowest first: each value is typed as
# Python's int() and float() read it, and a column takes the widest kind of its values
# (tfx_bsl 1.16 coders/csv_decoder.py _InferValueType and ColumnTypeInferrer).
# UNKNOWN: no value at all; TFX writes a feature with no kind.
UNKNOWN, INT, FLOAT, STRING = example_bytes.UNKNOWN, example_bytes.INT, example_bytes.FLOAT, example_bytes.STRING
# What int(bytes) and float(bytes) strip around a number.
_PY_WHITESPACE = " \t\n\r\x0b\x0c"
_DECIMAL_INTEGER = r"^-?[0-9]+$"


def _reader(path: str):
    """Every feature column as text, read as csv_input reads the file before the run
    (dialects, missing-value markers, quoted line breaks across blocks): the kinds decide
    the conversion, not Arrow's own inference (which accepts hex integers Python does not,
    and rejects padded numbers it does)."""
    names = csv_input.feature_columns(csv_input.header(path))
    for batch in csv_input.open_rows(path, csv_input.as_strings(names), BLOCK_BYTES, include_columns=names):
        yield csv_input.drop_blank_rows(batch)


def _number_text(column: pa.Array) -> pa.Array:
    """The text a number is parsed from: as int()/float() do, without surrounding
    whitespace and one leading '+'."""
    text = pc.utf8_trim(column, characters=_PY_WHITESPACE)
    return pc.replace_substring_regex(text, pattern=r"^\+([^+-])", replacement=r"\1")


def _parses(column: pa.Array, kind: pa.DataType) -> bool:
    try:
        pc.cast(column, kind)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def column_kind(column: pa.Array) -> int:
    """The widest kind among the values of a text column."""
    values = column.drop_null()
    if len(values) == 0:
        return UNKNOWN
    text = _number_text(values)
    integer = pc.match_substring_regex(text, _DECIMAL_INTEGER)
    if not _parses(text.filter(integer), pa.int64()):
        return STRING  # an integer beyond int64: TFX keeps the column as strings
    if pc.all(integer).as_py():
        return INT
    return FLOAT if _parses(text, pa.float64()) else STRING


def infer_column_kinds(paths: list) -> dict:
    """{column: kind} over every value of every file (Arrow alone infers from the first
    block only)."""
    kinds = {}
    for path in paths:
        for batch in _reader(path):
            for name, column in zip(batch.schema.names, batch.columns):
                if kinds.get(name, UNKNOWN) < STRING:
                    kinds[name] = max(kinds.get(name, UNKNOWN), column_kind(column))
    return kinds


def _typed(column: pa.Array, kind: int) -> pa.Array:
    if kind == INT:
        return pc.cast(_number_text(column), pa.int64())
    if kind == FLOAT:
        # float() parses to a double, which tf.train.FloatList rounds to float32: parsing
        # straight to float32 rounds differently for a few 17-digit decimals.
        return pc.cast(pc.cast(_number_text(column), pa.float64()), pa.float32(), safe=False)
    return pc.cast(column, pa.binary())  # the cell's bytes as written


def _typed_columns(batch: pa.RecordBatch, kinds: dict) -> dict:
    return {n: _typed(batch.column(n), kinds[n]) if kinds[n] != UNKNOWN else batch.column(n)
            for n in batch.schema.names}


def encode(batch: pa.RecordBatch, kinds: dict) -> list:
    """Serialized tf.Examples in protobuf's deterministic byte form, a missing value left out
    of its row's Example (components/README.md: missing values)."""
    return example_bytes.as_bytes(example_bytes.serialize(_typed_columns(batch, kinds), kinds, batch.num_rows))


def split_keys(batch: pa.RecordBatch, kinds: dict, records: list) -> list:
    """What TFX hashes to assign each row's split: the row as CsvExampleGen serializes it,
    a missing value as an empty list. A row without a gap is the record itself; only rows
    with one are serialized again, so each row lands in the split CsvExampleGen (and the
    stock path, Executor.GenerateExamplesByBeam) gives it."""
    gaps = None
    for column in batch.columns:
        if column.null_count:
            gaps = column.is_null() if gaps is None else pc.or_(gaps, column.is_null())
    if gaps is None:
        return records
    rows = np.flatnonzero(np.asarray(gaps))
    gapped = batch.take(pa.array(rows))
    stock = example_bytes.as_bytes(example_bytes.serialize(
        _typed_columns(gapped, kinds), kinds, gapped.num_rows, missing_as_empty_list=True))
    keys = list(records)
    for row, key in zip(rows.tolist(), stock):
        keys[row] = key
    return keys


def _encoded_batches(paths: list):
    """(records, split keys) a read block of rows at a time, in file order."""
    kinds = infer_column_kinds(paths)
    for path in paths:
        for batch in _reader(path):
            records = encode(batch, kinds)
            yield records, split_keys(batch, kinds, records)


def record_batches_from_csv(paths: list):
    """Lists of serialized tf.Examples, a read block of rows at a time, in file order."""
    kinds = infer_column_kinds(paths)
    for path in paths:
        for batch in _reader(path):
            yield encode(batch, kinds)


def examples_from_csv(paths: list):
    """Serialized tf.Examples of every row of the files, in file order."""
    for records in record_batches_from_csv(paths):
        yield from records


def _has_values(feature) -> bool:
    kind = feature.WhichOneof("kind")
    return kind is not None and len(getattr(feature, kind).value) > 0


def without_missing_values(example: tf.train.Example) -> tf.train.Example:
    """A copy of the Example without the features that hold no value: CsvExampleGen's
    missing value (an empty list, or an empty Feature) in kubetfx's representation."""
    out = tf.train.Example()
    for name, feature in example.features.feature.items():
        if _has_values(feature):
            out.features.feature[name].CopyFrom(feature)
    return out


def splits_of(records: list, boundaries: list) -> np.ndarray:
    """TFX's partition of each record: sha256 of the serialized example, read as a
    big-endian number, modulo the total hash buckets, into cumulative buckets
    (tfx 1.16 components/example_gen/base_example_gen_executor.py _PartitionFn). The modulo is taken a digest byte at
    a time over all records at once (Horner's rule; the buckets fit in int32)."""
    sha256 = hashlib.sha256
    digests = np.frombuffer(b"".join([sha256(r).digest() for r in records]), np.uint8).reshape(-1, 32)
    total = int(boundaries[-1])
    remainder = np.zeros(len(records), dtype=np.int64)
    for column in digests.T:
        remainder = (remainder * 256 + column) % total
    return np.searchsorted(np.asarray(boundaries), remainder, side="right")


# kubetfx's split: 4 hash buckets train, 1 eval, 1 test. Train keeps TFX's default 2 of 3
# rows; eval (early stopping, blessing) and test (the held-out acceptance test, which no
# training, tuning, Transform analysis or blessing reads) get 1 of 6 each: 57 and 57 of
# the 344 embedded penguins.
DEFAULT_SPLITS = (("train", 4), ("eval", 1), ("test", 1))


def label_counts_per_split(paths: list, label: str, rarer_than: int, splits=DEFAULT_SPLITS) -> dict:
    """{split name: {class: rows}} for the classes with fewer than `rarer_than` rows in all
    the data (a class as its text in the file), each row placed as the executor places it:
    the same kinds, records and split keys. Only those rows are serialized and hashed, so
    asking about a few rare classes of a large table costs reading it, not an ExampleGen."""
    totals = {}
    for path in paths:
        for batch in _reader(path):
            for item in pc.value_counts(batch.column(label).drop_null()).to_pylist():
                totals[item["values"]] = totals.get(item["values"], 0) + item["counts"]
    rare = pa.array(sorted(v for v, n in totals.items() if n < rarer_than), pa.string())
    counts = {name: {} for name, _ in splits}
    if not len(rare):
        return counts
    kinds = infer_column_kinds(paths)
    boundaries = list(np.cumsum([buckets for _, buckets in splits]))
    for path in paths:
        for batch in _reader(path):
            rows = batch.filter(pc.fill_null(pc.is_in(batch.column(label), value_set=rare), False))
            if not rows.num_rows:
                continue
            records = encode(rows, kinds)
            placed = splits_of(split_keys(rows, kinds, records), boundaries).tolist()
            for value, split in zip(rows.column(label).to_pylist(), placed):
                per_class = counts[splits[split][0]]
                per_class[value] = per_class.get(value, 0) + 1
    return counts


# Recorded on the Examples artifact: what this execution read (lineage, the report).
ROWS_READ, BYTES_READ = "rows_read", "bytes_read"
FINGERPRINT = "input_fingerprint"  # the driver's, before the executor starts (tfx io_utils)


class InputChangedError(DataRejectedError):
    """An input file changed between the driver's look and the end of the read (rows
    appended by a writer still at work): the examples are not the file the run records.
    A data rejection (exit 3), with one line naming the file."""


def _file_states(paths: list) -> dict:
    """{path: (bytes, mtime in ns)}."""
    states = {}
    for path in paths:
        stat = os.stat(path)
        states[path] = (stat.st_size, stat.st_mtime_ns)
    return states


_AGAIN = "run again once the file is written completely (or copy it and run on the copy)"


def _check_fingerprint(fingerprint, states: dict) -> None:
    """The driver's fingerprint (file count, total bytes, mtimes in seconds) against the
    files as the read starts: a change in between is refused like one during the read."""
    if not fingerprint:
        return
    fields = dict(part.split(":", 1) for part in fingerprint.split(",") if ":" in part)
    seconds = [mtime // 10**9 for _, mtime in states.values()]
    xor = 0
    for value in seconds:
        xor ^= value
    now = {"num_files": len(states), "total_bytes": sum(size for size, _ in states.values()),
           "xor_checksum": xor, "sum_checksum": sum(seconds)}
    changed = [key for key, value in now.items() if key in fields and fields[key] != str(value)]
    if changed:
        raise InputChangedError(
            f"the input changed after the run looked at it ({fields.get('total_bytes')} -> "
            f"{now['total_bytes']} bytes in {now['num_files']} file(s)); {_AGAIN}")


def _check_unchanged(before: dict, paths_now: list, rows: int) -> None:
    after = _file_states(paths_now)
    for path in sorted(set(before) | set(after)):
        if before.get(path) != after.get(path):
            was, now = before.get(path, (0, 0))[0], after.get(path, (0, 0))[0]
            raise InputChangedError(f"{path} changed while ExampleGen read it ({was} -> {now} bytes; "
                                    f"{rows} rows read): {_AGAIN}")


def _parquet_batches(paths: list):
    from kubetfx.components.example_gen import parquet_input
    return parquet_input.encoded_batches(paths)


def _tfrecord_batches(paths: list):
    from kubetfx.components.example_gen import tfrecord_input
    return tfrecord_input.encoded_batches(paths)


_READERS = {data_format.CSV: _encoded_batches, data_format.PARQUET: _parquet_batches,
            data_format.TFRECORD: _tfrecord_batches}


class Executor(csv_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        split_config = output_config.split_config
        if (len(input_config.splits) != 1 or not split_config.splits
                or split_config.HasField("partition_feature_name")
                or not beam_runner.runs_in_process(self._beam_pipeline_args)):
            return self._stock_do(input_dict, output_dict, exec_properties)

        self._log_startup(input_dict, output_dict, exec_properties)
        started = time.monotonic()
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        names = [s.name for s in split_config.splits]
        examples.split_names = artifact_utils.encode_split_names(names)
        boundaries = list(np.cumsum([s.hash_buckets for s in split_config.splits]))
        pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config.splits[0].pattern)
        paths = sorted(glob.glob(pattern))
        if not paths:
            raise RuntimeError(f"no input files match {pattern}")
        before = _file_states(paths)
        _check_fingerprint(exec_properties.get(FINGERPRINT), before)
        kind = data_format.format_of_file(paths[0])
        batches = _READERS[kind](paths)
        first = next(batches, None)
        # Only CSV's bytes must be CsvExampleGen's (its splits); Parquet's are kubetfx's
        # own, TFRecords are copied as they are.
        differs = example_bytes.differs_from_protobuf(first[0][0]) if kind == data_format.CSV and first and first[0] else None
        if differs:  # before anything is written
            logging.warning("kubetfx: ExampleGen: the first record is not protobuf's own bytes (%s): "
                            "the stock executor runs", differs)
            return super().Do(input_dict, output_dict, exec_properties)
        # The writers' C++ write, without TFRecordWriter.write's Python wrapper: a third of
        # the per-record cost; the public write (same bytes) if an upgrade moved it.
        tensorflow = upstream_seams.tensorflow()
        write = tensorflow.record_writer_write if tensorflow else tf.io.TFRecordWriter.write
        writers = []
        for name in names:
            split_dir = artifact_utils.get_split_uri([examples], name)
            tf.io.gfile.makedirs(split_dir)
            writers.append(tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"), GZIP))
        def split_batches():
            for records, keys in itertools.chain([first] if first else [], batches):
                yield records, splits_of(keys, boundaries).tolist()

        rows = 0
        try:
            # The next block is read, parsed (Arrow, GIL released), serialized and hashed
            # in a thread while this one is written (GZIP in the writers' C++).
            for records, splits in prefetch.ahead(split_batches()):
                for writer, record in zip([writers[i] for i in splits], records):
                    write(writer, record)
                rows += len(records)
        finally:
            for writer in writers:
                writer.close()
        _check_unchanged(before, sorted(glob.glob(pattern)), rows)
        # What was read, beside the driver's fingerprint (taken before the read).
        examples.set_int_custom_property(ROWS_READ, rows)
        examples.set_int_custom_property(BYTES_READ, sum(size for size, _ in before.values()))
        examples_utils.set_payload_format(examples, exec_properties.get(
            standard_component_specs.OUTPUT_DATA_FORMAT_KEY) or example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(
            exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY) or example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        seconds = time.monotonic() - started
        logging.warning("ExampleGen: %d rows from %d %s files in %.1f s (%.0f rows/s)", rows, len(paths),
                        data_format.NAMES[kind], seconds, rows / max(seconds, 1e-9))

    def _stock_do(self, input_dict, output_dict, exec_properties) -> None:
        """TFX's own executor for the input's format: CsvExampleGen's (with missing values
        left out, GenerateExamplesByBeam), the Parquet custom executor, ImportExampleGen's."""
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config.splits[0].pattern)
        paths = sorted(glob.glob(pattern))
        kind = data_format.format_of_file(paths[0]) if paths else data_format.format_of_name(pattern)
        if kind == data_format.PARQUET and "=" in pattern:  # its key columns come from folder names
            raise csv_input.InputError(
                f"{input_config.splits[0].pattern} under {exec_properties[standard_component_specs.INPUT_BASE_KEY]}: "
                "a partitioned Parquet folder is read by kubetfx's in-process ExampleGen only (TFX's Parquet "
                "executor would drop its key columns); run without other Beam runners, or write it unpartitioned")
        if kind == data_format.PARQUET:
            from tfx.components.example_gen.custom_executors import parquet_executor as stock
        elif kind == data_format.TFRECORD:
            from tfx.components.example_gen.import_example_gen import executor as stock
        else:
            return super().Do(input_dict, output_dict, exec_properties)
        return stock.Executor(self._context).Do(input_dict, output_dict, exec_properties)

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        """The stock path (TFX's Beam pipeline) with missing values left out of the
        Examples, after TFX assigned the splits, as the fast path writes them."""
        import apache_beam as beam

        splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        return {name: examples | f"LeaveOutMissing[{name}]" >> beam.Map(without_missing_values)
                for name, examples in splits.items()}
