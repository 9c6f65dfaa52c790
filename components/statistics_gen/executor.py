"""StatisticsGen executor: TFDV's own statistics generators, without a Beam pipeline.

Stock StatisticsGen runs TFDV's generators in a Beam pipeline. On the in-process runner
every record crosses Beam's data channel one at a time, and a py-spy profile at 1M rows
(17 s here) puts 60% of the stage there, not in TFDV. For the default options (kubetfx's:
no stats options, no schema, no sampling, unsharded output) this executor reads each
split's TFRecords with TensorFlow's reader in batches, decodes them with the decoder the
Beam source uses (tfx_bsl ExamplesToRecordBatchDecoder), feeds them to the CombineFn the
pipeline would run (tensorflow_data_validation 1.16 statistics/stats_impl.py
_CombinerStatsGeneratorsCombineFn over BasicStatsGenerator), counts values exactly as
TopKUniquesStatsGenerator does (its _to_topk_tuples, Beam's Top per feature, its proto
makers), merges as the pipeline does (tfx_bsl merge_util) and writes the same artifact.
Compared with the stock executor in statistics_gen/executor_test.py.

Anything else (stats options, a schema input, sampling, sharded output, another payload
or file format, a distributed Beam runner) goes to the stock executor unchanged, and so
does every run on a TFDV whose private names above moved or changed (components/
upstream_seams.py checks them at plan time and says which in one log line).

Two routes to TFDV statistics, on purpose: pipelines/monitor/new_statistics.py summarizes
new data outside any run (no Examples artifact, no stock executor to hand over to) with a
schema, a feature allowlist and TFDV's public in-memory generators, then re-buckets the
histograms on the training boundaries; this one has no schema and must write the
StatisticsGen artifact bit for bit as the stock executor does. One route would either give
the monitor a second, schema-less pass or give StatisticsGen options it never takes."""
from __future__ import annotations

import collections
import heapq
import os
import time

import tensorflow as tf
from absl import logging
from tensorflow_data_validation.statistics import stats_impl, stats_options
from tensorflow_data_validation.statistics.generators import top_k_uniques_stats_generator as top_k
from tensorflow_data_validation.utils import top_k_uniques_stats_util
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen import executor as tfx_executor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs as keys
from tfx.utils import json_utils, stats_utils
from tfx_bsl.coders import example_coder
from tfx_bsl.statistics import merge_util

from kubetfx.components import beam_runner, prefetch, upstream_seams

# Records decoded per batch: the CombineFn's own batch (TFDV's default desired batch size,
# 1000) times ten, so its generators see fewer, larger batches.
READ_BATCH = 10_000


# Compression by file name, as Beam's CompressionTypes.AUTO reads the stock executor's
# TFRecords; other compressed files go to the stock executor.
_COMPRESSION = {".gz": "GZIP"}
_OTHER_COMPRESSED = (".bz2", ".deflate", ".zst", ".zlib", ".lzma", ".xz")


def record_batches(paths: list, batch: int = READ_BATCH):
    """Lists of serialized records, file by file, in file order. The next batch is read and
    decompressed in TensorFlow's own threads (prefetch: one batch) while this one is used."""
    for path in paths:
        compression = _COMPRESSION.get(os.path.splitext(path)[1], "")
        for records in tf.data.TFRecordDataset(path, compression_type=compression).batch(batch).prefetch(1):
            yield records.numpy().tolist()


def _top_k_and_uniques(counts: dict, options: stats_options.StatsOptions) -> list:
    """TopKUniquesStatsGenerator's protos from exact counts {feature path: Counter}: its
    Top().PerKey over (count, value) keeps the largest pairs, ties broken by the larger
    value, as heapq.nlargest does."""
    keep = max(options.num_top_values, options.num_rank_histogram_buckets)
    protos = []
    for path, counter in counts.items():
        largest = heapq.nlargest(keep, ((count, value) for value, count in counter.items()))
        protos.append(top_k_uniques_stats_util.make_dataset_feature_stats_proto_topk_single(
            feature_path_tuple=path,
            value_count_list=[top_k_uniques_stats_util.FeatureValueCount(value, count) for count, value in largest],
            is_weighted_stats=False, num_top_values=options.num_top_values,
            frequency_threshold=options.frequency_threshold,
            num_rank_histogram_buckets=options.num_rank_histogram_buckets))
        protos.append(top_k_uniques_stats_util.make_dataset_feature_stats_proto_unique_single(
            feature_path_tuple=path, num_uniques=len(counter)))
    return protos


def split_statistics(batches, options: stats_options.StatsOptions,
                     tfdv=None) -> statistics_pb2.DatasetFeatureStatisticsList:
    """The statistics of one split, from lists of serialized tf.Examples. `tfdv`: TFDV's
    private names (upstream_seams.tfdv(), resolved by the caller's plan)."""
    tfdv = tfdv or upstream_seams.tfdv()
    if tfdv is None:
        raise ValueError("TFDV's private statistics names moved (see the log): use the stock executor")
    generators = stats_impl.get_generators(options)
    transforms, combiners, _ = tfdv.split_generator_types(generators, 1)
    if [type(g) for g in transforms] != [top_k.TopKUniquesStatsGenerator]:
        raise ValueError(f"unexpected TFDV generators: {[g.name for g in generators]}")
    combine = tfdv.CombinerStatsGeneratorsCombineFn(combiners, options.desired_batch_size)
    combine.setup()
    accumulator = combine.create_accumulator()
    decoder = example_coder.ExamplesToRecordBatchDecoder()
    counts = collections.defaultdict(collections.Counter)
    rows = 0
    # Read and decoded a batch ahead in a thread (both release the GIL) while TFDV's
    # combiners take the current one: half the stage on two cores at 1M rows.
    for batch in prefetch.ahead(decoder.DecodeBatch(records) for records in batches):
        rows += batch.num_rows
        accumulator = combine.add_input(accumulator, batch)
        for (_, path, value), (count, _) in tfdv.to_topk_tuples(
                (None, batch), bytes_features=frozenset(), categorical_numeric_types={},
                example_weight_map=options.example_weight_map):
            counts[path][value] += count
    if rows == 0:  # as the pipeline: one empty placeholder for an empty split
        protos = [statistics_pb2.DatasetFeatureStatistics()]
    else:
        protos = [combine.extract_output(combine.compact(accumulator))] + _top_k_and_uniques(counts, options)
    return merge_util.merge_dataset_feature_statistics(protos)


class Executor(tfx_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        plan = self._plan(input_dict, exec_properties)
        if plan is None:
            return super().Do(input_dict, output_dict, exec_properties)
        self._log_startup(input_dict, output_dict, exec_properties)
        examples, split_paths, tfdv = plan
        statistics = artifact_utils.get_single_instance(output_dict[keys.STATISTICS_KEY])
        # The artifact's properties as the stock executor sets them.
        split_names = list(split_paths)
        statistics.split_names = artifact_utils.encode_split_names(split_names)
        statistics.span = examples.span
        try:
            link = stats_utils.generate_stats_dashboard_link(statistics)
        except Exception:  # noqa: BLE001 - as TFX: a link is a nicety, never a failure
            link = ""
        statistics.set_string_custom_property(tfx_executor.STATS_DASHBOARD_LINK, link)
        statistics.set_json_value_custom_property(
            tfx_executor.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME,
            json_utils.dumps({split: 1.0 for split in split_names}))
        for split, paths in split_paths.items():
            started = time.monotonic()
            result = split_statistics(record_batches(paths), stats_options.StatsOptions(), tfdv)
            output_uri = artifact_utils.get_split_uri([statistics], split)
            tf.io.gfile.makedirs(output_uri)
            with tf.io.gfile.GFile(os.path.join(output_uri, tfx_executor.DEFAULT_FILE_NAME), "wb") as f:
                f.write(result.SerializeToString())
            logging.warning("StatisticsGen: split %s, %d examples in %.1f s", split,
                            result.datasets[0].num_examples if result.datasets else 0,
                            time.monotonic() - started)

    def _plan(self, input_dict, exec_properties):
        """(examples, {split: its files}, TFDV's private names) when the defaults apply and
        the names are where kubetfx expects them, else None (stock)."""
        exclude = json_utils.loads(exec_properties.get(keys.EXCLUDE_SPLITS_KEY, "null")) or []
        if (exec_properties.get(keys.STATS_OPTIONS_JSON_KEY) or input_dict.get(keys.SCHEMA_KEY)
                or json_utils.loads(exec_properties.get(keys.SAMPLE_RATE_BY_SPLIT_KEY, "null"))
                or exec_properties.get(keys.SHARDED_STATS_OUTPUT_KEY) or not isinstance(exclude, list)):
            return None
        if not beam_runner.runs_in_process(self._beam_pipeline_args):
            return None
        examples = artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY])
        if examples.has_custom_property(examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME):
            return None
        if examples_utils.get_payload_format(examples) != example_gen_pb2.FORMAT_TF_EXAMPLE:
            return None
        if examples_utils.get_file_format(examples) != "tfrecords_gzip":
            return None
        try:
            split_paths = {
                split: sorted(tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*")))
                for split in artifact_utils.decode_split_names(examples.split_names) if split not in exclude}
        except tf.errors.UnimplementedError:
            return None  # a scheme TensorFlow cannot open (s3:// since TF 2.16) but Beam can
        if not split_paths or any(p.endswith(_OTHER_COMPRESSED) for paths in split_paths.values() for p in paths):
            return None  # no split: the stock executor's error
        tfdv = upstream_seams.tfdv()  # last: its log line only when it alone decides
        if tfdv is None:
            return None
        return examples, split_paths, tfdv
