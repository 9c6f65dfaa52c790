"""ExampleGen executor for CSV: stock CsvExampleGen parses and converts row by row in a
Beam pipeline (~5k rows/s here: 192 s for 1M rows). This one streams each file through
Arrow's C++ CSV reader, encodes whole batches to tf.Examples with tfx_bsl's C++ coder,
and assigns splits exactly as TFX does (sha256 of the serialized example, hash buckets),
writing the same artifact (GZIP TFRecords per split, same properties). Memory stays
bounded: files are read in blocks, twice (types first, then rows). Files are read as
`csv_input` reads them before the run (CSV as R, pandas, Excel and database exports write
it; see there), which CsvExampleGen does not: it keeps blank `,,,` rows as examples,
an unnamed row-number column as a feature, and "NA" as a string.

Anything but a single input split hashed into output splits (the kubetfx default) is
handed to the stock executor unchanged."""
from __future__ import annotations

import bisect
import glob
import hashlib
import os
import time

import numpy as np
import pyarrow as pa
import tensorflow as tf
from absl import logging
from tfx.components.example_gen import write_split
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder

from kubetfx.components.example_gen import csv_input

BLOCK_BYTES = 16 << 20
# zlib level 1 instead of the default 6: writing 1M rows takes 0.8 s instead of 2.1 s, for
# files ~12% larger. Still GZIP TFRecords: every reader is unchanged.
GZIP = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)


def _as_feature_list(column: pa.Array) -> pa.Array:
    """A column as list<value>; a missing value becomes an empty list, which is how
    CsvExampleGen writes it (the feature is there, with no value)."""
    valid = np.asarray(column.is_valid())
    offsets = pa.array(np.concatenate([[0], np.cumsum(valid)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, column.drop_null())


def encode(batch: pa.RecordBatch) -> list:
    """Serialized tf.Examples in a deterministic byte form: the C++ coder writes the feature
    map in arbitrary order, and TFX assigns splits by hashing the deterministic form."""
    lists = [_as_feature_list(c) for c in batch.columns]
    encoded = example_coder.RecordBatchToExamples(pa.RecordBatch.from_arrays(lists, batch.schema.names))
    parse = tf.train.Example.FromString
    return [parse(record).SerializeToString(deterministic=True) for record in encoded]


def split_of(record: bytes, boundaries: list) -> int:
    """TFX's partition: sha256 of the serialized example into cumulative hash buckets."""
    return bisect.bisect(boundaries, int(hashlib.sha256(record).hexdigest(), 16) % boundaries[-1])


class Executor(csv_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        split_config = output_config.split_config
        if (len(input_config.splits) != 1 or not split_config.splits
                or split_config.HasField("partition_feature_name")):
            return super().Do(input_dict, output_dict, exec_properties)

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
        types = csv_input.infer_column_types(paths)
        writers = []
        for name in names:
            split_dir = artifact_utils.get_split_uri([examples], name)
            tf.io.gfile.makedirs(split_dir)
            writers.append(tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"), GZIP))
        rows = 0
        try:
            for path in paths:
                # Read as the checks before the run read it (csv_input: dialects, missing markers).
                for batch in csv_input.open_rows(path, types, BLOCK_BYTES, include_columns=list(types)):
                    batch = csv_input.drop_blank_rows(batch)
                    for record in encode(batch):
                        writers[split_of(record, boundaries)].write(record)
                    rows += batch.num_rows
        finally:
            for writer in writers:
                writer.close()
        examples_utils.set_payload_format(examples, exec_properties.get(
            standard_component_specs.OUTPUT_DATA_FORMAT_KEY) or example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, write_split.to_file_format_str(
            exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY) or example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        seconds = time.monotonic() - started
        logging.warning("ExampleGen: %d rows from %d files in %.1f s (%.0f rows/s)", rows, len(paths), seconds,
                        rows / max(seconds, 1e-9))
