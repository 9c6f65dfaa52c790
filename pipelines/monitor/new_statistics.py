"""TFDV statistics of new data, decoded exactly as the pipeline decodes its training data,
so a difference in the statistics is a difference in the data, not in the reading.

CSV goes through ExampleGen's own path (`components/example_gen/executor.py`
examples_from_csv: the column kinds inferred over every file, the same tf.Example encoding);
inference logs are already tf.Examples. Both are decoded by tfx_bsl into one Arrow
RecordBatch and summarized in memory with TFDV's combiners (what StatisticsGen runs in
Beam), restricted to the schema's features: the log's own columns (prediction, version,
timestamp) are not data the model was trained on."""
from __future__ import annotations

import pyarrow as pa
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tfx_bsl.coders import example_coder

from kubetfx.components.example_gen import csv_input, executor as example_gen

BATCH_ROWS = 50_000


def csv_examples(data: str):
    """Serialized tf.Examples of a CSV file or folder, in ExampleGen's encoding."""
    paths = [str(p) for p in csv_input.csv_files(data)]
    try:
        yield from example_gen.examples_from_csv(paths)
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise csv_input.InputError(f"cannot read {data} as CSV: {str(err).splitlines()[0]}") from None


def statistics(serialized_examples, schema):
    """DatasetFeatureStatisticsList of the examples, for the schema's features only."""
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    options = tfdv.StatsOptions(schema=schema, feature_allowlist=[f.name for f in schema.feature])
    generators = stats_impl.get_generators(options, in_memory=True)
    accumulators = [g.create_accumulator() for g in generators]
    rows, batch = 0, []

    def add(records):
        record_batch = decoder.DecodeBatch(records)
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
    return stats_impl.extract_statistics_output(accumulators, generators)
