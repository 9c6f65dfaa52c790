"""TFDV statistics of new data, decoded exactly as the pipeline decodes its training data,
so a difference in the statistics is a difference in the data, not in the reading.

`--data` is told and checked as `run --data` is (components/example_gen/data_format.py:
CSV, Parquet or TFRecords of tf.Examples; a folder mixing them refused) and read by
ExampleGen's own readers and encoding: CSV (the column kinds inferred over every file) and
Parquet with each column typed as the served schema says when every value converts (a
pandas file's float column of whole numbers is the int feature it was trained as, not a
type anomaly), TFRecords as
they are, each record checked to be a tf.Example. Inference logs are already tf.Examples. Both are decoded by tfx_bsl into one Arrow
RecordBatch and summarized in memory with TFDV's combiners (what StatisticsGen runs in
Beam), restricted to the schema's features: the log's own columns (prediction, version,
timestamp) are not data the model was trained on.

Given the training histograms' bucket boundaries, each numeric feature's standard histogram
is counted again on those boundaries (plus a bucket below and one above for values outside
them): TFDV's Jensen-Shannon divergence re-buckets two histograms with different boundaries
as if values were spread evenly inside each bucket, which for a small integer feature (counts,
ratings, hours) puts the mass of one value in the wrong bucket and reads sampling noise as
drift (0.33 on healthy 100-row samples of a 0-12 count, tests/bench/monitor_false_alarms.py).

A second route to TFDV statistics beside components/statistics_gen/executor.py, on purpose:
that one writes a pipeline's StatisticsGen artifact, schema-less and bit for bit as the
stock executor; this one needs the served schema (allowlist, in-memory generators) and the
training histograms' boundaries, and runs outside any pipeline run."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders import example_coder

from kubetfx.components.example_gen import csv_input, data_format, example_bytes, executor as example_gen

BATCH_ROWS = 50_000
_SCHEMA_KINDS = {schema_pb2.INT: example_bytes.INT, schema_pb2.FLOAT: example_bytes.FLOAT,
                 schema_pb2.BYTES: example_bytes.STRING}


def data_examples(kind: str, files: list, schema=None):
    """Serialized tf.Examples of the files of a format `run --data` takes, as checked by
    data_format.check_unlabelled; Parquet columns typed as `schema` (the served one) says."""
    if kind == data_format.CSV:
        try:
            yield from _csv_examples([str(p) for p in files], _wanted(schema))
        except (pa.ArrowInvalid, UnicodeDecodeError) as err:
            raise csv_input.InputError(f"cannot read {files[0].parent if len(files) > 1 else files[0]} as CSV: "
                                       f"{str(err).splitlines()[0]}") from None
    elif kind == data_format.PARQUET:
        from kubetfx.components.example_gen import parquet_input

        for records, _ in parquet_input.encoded_batches(files, _wanted(schema)):
            yield from records
    else:
        from kubetfx.components.example_gen import tfrecord_input

        for path in files:
            yield from tfrecord_input.records(path)


def _wanted(schema) -> dict:
    """{feature: example_bytes kind} of the served schema."""
    return {f.name: _SCHEMA_KINDS[f.type] for f in (schema.feature if schema else ()) if f.type in _SCHEMA_KINDS}


def _whole_numbers(column: pa.Array) -> pa.Array:
    """A text column of numbers as the text of int64s; ArrowInvalid when one is not whole
    (1.5), not finite or past int64."""
    floats = pc.cast(pc.utf8_trim_whitespace(column), pa.float64())
    return pc.cast(pc.cast(floats, pa.int64()), pa.string())


def _csv_rows(path: str, columns=None):
    names = columns or csv_input.feature_columns(csv_input.header(path))
    for batch in csv_input.open_rows(path, csv_input.as_strings(names), example_gen.BLOCK_BYTES,
                                     include_columns=names):
        yield csv_input.drop_blank_rows(batch)


def _converts_to_int(paths: list, name: str) -> bool:
    try:
        for path in paths:
            for batch in _csv_rows(path, [name]):
                _whole_numbers(batch.column(0))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _csv_examples(paths: list, wanted: dict):
    """example_gen's encoding of CSV, with each column typed as the served schema says when
    every value converts, as parquet_input.column_kinds does for Parquet: a pandas export
    writes an int column with gaps as 181.0, a small sample of a float feature may hold
    only whole numbers (40), a code trained as text may come as digits only; each was an
    ANOMALY ("Expected data of type: INT but got FLOAT") on healthy data."""
    kinds = example_gen.infer_column_kinds(paths)
    as_ints = set()
    for name, kind in kinds.items():
        want = wanted.get(name, kind)
        if want in (kind, example_bytes.UNKNOWN) or kind == example_bytes.UNKNOWN:
            continue
        if want == example_bytes.INT and kind == example_bytes.FLOAT and _converts_to_int(paths, name):
            as_ints.add(name)
        elif want == example_bytes.INT or (want, kind) == (example_bytes.FLOAT, example_bytes.STRING):
            continue  # text where numbers were: a real change, TFDV's type anomaly says so
        kinds[name] = want
    for path in paths:
        for batch in _csv_rows(path):
            if as_ints:
                batch = pa.RecordBatch.from_arrays(
                    [_whole_numbers(c) if n in as_ints else c for n, c in zip(batch.schema.names, batch.columns)],
                    names=batch.schema.names)
            yield from example_gen.encode(batch, kinds)


def csv_examples(data: str, schema=None):
    """Serialized tf.Examples of a file or folder (CSV, or any format `run --data` takes),
    checked first (one-line InputErrors)."""
    yield from data_examples(*data_format.check_unlabelled(data), schema)


def standard_boundaries(statistics) -> dict:
    """{feature: bucket boundaries} of each numeric feature's standard histogram."""
    found = {}
    for feature in statistics.datasets[0].features:
        for histogram in feature.num_stats.histograms if feature.HasField("num_stats") else ():
            if histogram.type == histogram.STANDARD and histogram.buckets:
                name = feature.path.step[0] if feature.path.step else feature.name
                found[name] = np.array([b.low_value for b in histogram.buckets] + [histogram.buckets[-1].high_value])
    return found


def _bucket_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """[below, bucket 1..k, above]; as in TFDV's histograms, a bucket holds its upper edge
    (2008 in (2007.8, 2008]) and the first one its lower edge too."""
    values = values[np.isfinite(values)]
    index = np.searchsorted(edges, values, side="left")
    index[values == edges[0]] = 1
    return np.bincount(index, minlength=len(edges) + 1).astype(float)


def _rebucket(statistics, counts: dict, boundaries: dict) -> None:
    for feature in statistics.datasets[0].features:
        name = feature.path.step[0] if feature.path.step else feature.name
        if name not in counts or not feature.HasField("num_stats"):
            continue
        histogram = next((h for h in feature.num_stats.histograms if h.type == h.STANDARD), None)
        if histogram is None:
            continue
        edges, found = boundaries[name], counts[name]
        lows = [min(feature.num_stats.min, edges[0]), *edges]
        highs = [edges[0], *edges[1:], max(feature.num_stats.max, edges[-1])]
        del histogram.buckets[:]
        for i, count in enumerate(found):
            if count or 0 < i < len(found) - 1:
                histogram.buckets.add(low_value=lows[i], high_value=highs[i], sample_count=count)


def statistics(serialized_examples, schema, boundaries: dict | None = None, columns: set | None = None):
    """DatasetFeatureStatisticsList of the examples, for the schema's features only;
    `boundaries` ({feature: edges}, standard_boundaries of the training statistics): the
    standard histograms are counted on those edges; `columns`, when given, gets the name
    of every feature the examples hold, the schema's or not."""
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    options = tfdv.StatsOptions(schema=schema, feature_allowlist=[f.name for f in schema.feature])
    generators = stats_impl.get_generators(options, in_memory=True)
    accumulators = [g.create_accumulator() for g in generators]
    rows, batch = 0, []
    boundaries = boundaries or {}
    counts = {name: np.zeros(len(edges) + 1) for name, edges in boundaries.items()}

    def add(records):
        try:
            record_batch = decoder.DecodeBatch(records)
        except RuntimeError as err:  # DATA_LOSS: a foreign or corrupt file among the log's shards
            raise csv_input.InputError(f"a record of the new data is not a serialized tf.Example "
                                       f"({str(err).splitlines()[0][:200]}): a foreign file in the log folder?") from None
        if columns is not None:
            columns.update(record_batch.schema.names)
        for name in counts:
            index = record_batch.schema.get_field_index(name)
            if index >= 0 and pa.types.is_list(record_batch.column(index).type) or \
                    index >= 0 and pa.types.is_large_list(record_batch.column(index).type):
                values = pc.list_flatten(record_batch.column(index)).to_numpy(zero_copy_only=False)
                if values.dtype.kind in "iuf":
                    counts[name] += _bucket_counts(values.astype(np.float64), boundaries[name])
        partial = stats_impl.generate_partial_statistics_in_memory(record_batch, options, generators)
        return [g.merge_accumulators([a, p]) for g, a, p in zip(generators, accumulators, partial)]

    for record in serialized_examples:
        batch.append(record)
        if len(batch) == BATCH_ROWS:
            accumulators, rows, batch = add(batch), rows + len(batch), []
    if batch:
        accumulators, rows = add(batch), rows + len(batch)
    if rows == 0:
        raise csv_input.InputError("no rows to compare: the new data is empty")
    result = stats_impl.extract_statistics_output(accumulators, generators)
    _rebucket(result, counts, boundaries)
    return result
