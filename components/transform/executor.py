"""Transform executor: the built-in preprocessing_fn's analyzers computed in process, without
a Beam pipeline.

Stock Transform runs tft_beam.AnalyzeDataset: it traces the preprocessing_fn five times,
builds a Beam pipeline of ~480 transforms (pickling each DoFn) and runs it on the direct
runner in ~60 bundles. A cProfile of the embedded data (204 rows) puts ~90% of the stage
there: pipeline construction and the runner, not the analyzers (docs/performance.md,
"Transform fast path"). kubetfx's default preprocessing_fn uses two kinds of analyzer
only: frequency vocabularies and TFT's mean-and-variance combiner. For it, this executor
traces the function once (tensorflow_transform impl_helper, in tf.compat.v1 mode, as the
component asks), reads the analyzed split's tf.Examples in batches of 1,000 with
TensorFlow's reader and decodes them as the stock executor's TFXIO does (projected on the
columns the analyzers read), runs the analyzers' input tensors in one session, and
computes each analyzer node the way TFT's Beam implementations do (beam/analyzer_impls.py:
counts per token, KvSwap, thresholds and top_k, sorted largest (count, token) first, the
empty-vocabulary dummy; the combiner's add_input / merge_accumulators / extract_output).
Batches of at most 1,000 rows, as Beam's: the combiner sums each batch in float32. It then writes what AnalyzeDataset and
WriteTransformFn write: the graph with the sinks still placeholders, then the final
SavedModel with each sink replaced by its value (vocabularies as assets), the
transformed metadata inferred from that SavedModel plus the asset map, and the raw
metadata. Compared with the stock executor's transform graph in executor_test.py.

Anything else goes to the stock executor unchanged: a user's module file or another
preprocessing_fn, statistics, materialized examples, an analyzer cache, a splits config,
TF2 tracing, another payload or file format, any runner but the in-process one
(components/beam_runner.py), an analyzer node this file does not compute, an analyzer
whose input needs another analyzer's output (a second phase), and every run on a TFT whose
internal names moved (components/upstream_seams.py, one log line)."""
from __future__ import annotations

import collections
import functools
import heapq
import json
import os
import time
import uuid

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io
from tfx.components.transform import executor as tfx_executor
from tfx.components.util import examples_utils, tfxio_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs as keys
from tfx.utils import io_utils
from tfx_bsl.coders import example_coder
from tfx_bsl.tfxio import tensor_representation_util

from kubetfx.components import beam_runner, prefetch, upstream_seams
from kubetfx.components.statistics_gen.executor import record_batches
from kubetfx.components.transform import preprocessing

# The dotted name component.py gives TFX for the built-in function.
BUILT_IN = f"{preprocessing.__name__}.preprocessing_fn"
# Examples decoded per session call. TFT's mean-and-variance sums each batch in float32
# inside the graph: the larger the batch, the further a column far from 0 drifts (TFX's
# taxi census tracts, 1.7e10 +- 3.3e5: mean off by 28,000 at 10,000 rows a batch, by
# 1,000 at 1,000). Beam's batches are at most 1,000 (tfx_bsl's default).
READ_BATCH = 1_000
ANALYZED_SPLIT = "train"  # the stock default without a splits_config
# What TFT calls these directories (output_wrapper.TFTransformOutput).
TRANSFORM_FN_DIR, TRANSFORMED_METADATA_DIR, RAW_METADATA_DIR = "transform_fn", "transformed_metadata", "metadata"
ASSET_MAP = "asset_map"
TEMP_DIR = ".temp_path"  # as the stock executor's, removed at the end


class Unsupported(Exception):
    """The traced function needs something this executor does not compute: stock runs."""


class Executor(tfx_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        plan = self._plan(input_dict, output_dict, exec_properties)
        if plan is None:
            return super().Do(input_dict, output_dict, exec_properties)
        started = time.monotonic()
        output_path = artifact_utils.get_single_uri(output_dict[keys.TRANSFORM_GRAPH_KEY])
        try:
            analysis = Analysis(plan["tft"], plan["preprocessing_fn"], plan["tfxio"], plan["schema"], plan["files"])
        except Unsupported as why:
            logging.warning("kubetfx: Transform: %s: the stock executor runs", why)
            return super().Do(input_dict, output_dict, exec_properties)
        self._log_startup(input_dict, output_dict, exec_properties)
        rows = analysis.write(plan["schema"], output_path)
        logging.warning("Transform: analyzed %d examples of split %s in process in %.1f s", rows,
                        ANALYZED_SPLIT, time.monotonic() - started)

    def _plan(self, input_dict, output_dict, exec_properties):
        """What the fast path needs, or None when the stock executor must run."""
        if (exec_properties.get(keys.MODULE_FILE_KEY) or exec_properties.get(keys.MODULE_PATH_KEY)
                or exec_properties.get(keys.PREPROCESSING_FN_KEY) != BUILT_IN
                or exec_properties.get(keys.STATS_OPTIONS_UPDATER_FN_KEY)
                or not exec_properties.get(keys.DISABLE_STATISTICS_KEY)
                or not exec_properties.get(keys.FORCE_TF_COMPAT_V1_KEY)
                or exec_properties.get(keys.SPLITS_CONFIG_KEY) or exec_properties.get(keys.SAVE_OPTIONS_KEY)
                or input_dict.get(keys.ANALYZER_CACHE_KEY) or output_dict.get(keys.UPDATED_ANALYZER_CACHE_KEY)
                or output_dict.get(keys.TRANSFORMED_EXAMPLES_KEY)):
            return None
        if not beam_runner.runs_in_process(self._beam_pipeline_args):
            return None
        examples = input_dict.get(keys.EXAMPLES_KEY) or []
        if len(examples) != 1 or not input_dict.get(keys.SCHEMA_KEY):
            return None
        examples = examples[0]
        if (examples.has_custom_property(examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME)
                or examples_utils.get_payload_format(examples) != example_gen_pb2.FORMAT_TF_EXAMPLE
                or examples_utils.get_file_format(examples) != "tfrecords_gzip"
                or ANALYZED_SPLIT not in artifact_utils.decode_split_names(examples.split_names)):
            return None
        _, data_view_uri = tfxio_utils.resolve_payload_format_and_data_view_uri([examples])
        if data_view_uri:
            return None
        found = upstream_seams.tft()  # last: its log line only when it alone decides
        if found is None:
            return None
        try:
            files = sorted(tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], ANALYZED_SPLIT), "*")))
        except tf.errors.UnimplementedError:
            return None  # a scheme TensorFlow cannot open (s3:// since TF 2.16) but Beam can
        if not files or any(not path.endswith(".gz") for path in files):
            return None  # no data (the stock executor's error) or files Beam reads by another compression
        schema = io_utils.SchemaReader().read(
            io_utils.get_only_uri_in_dir(artifact_utils.get_single_uri(input_dict[keys.SCHEMA_KEY])))
        # The TFXIO the stock executor builds for the analyzed split (its _CreateTFXIO).
        tfxio = tfxio_utils.make_tfxio(
            file_pattern=io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], ANALYZED_SPLIT)),
            file_format="tfrecords_gzip", telemetry_descriptors=["kubetfx", "Transform"],
            payload_format=example_gen_pb2.FORMAT_TF_EXAMPLE, schema=schema)
        custom_config = json.loads(exec_properties.get(keys.CUSTOM_CONFIG_KEY) or "null") or {}
        return {"tft": found, "schema": schema, "tfxio": tfxio, "files": files,
                "preprocessing_fn": functools.partial(preprocessing.preprocessing_fn, custom_config=custom_config)}


class Analysis:
    """One traced preprocessing_fn: its analyzer nodes checked, computed over the data, and
    the transform graph written."""

    def __init__(self, tft, preprocessing_fn, tfxio, schema, files: list):
        self._tft, self._tfxio, self._schema, self._files = tft, tfxio, schema, files
        specs = tfxio.TensorAdapter().OriginalTypeSpecs()
        self.graph, self.inputs, self.outputs = tft.trace_preprocessing_function(
            preprocessing_fn, specs, use_tf_compat_v1=True)
        if not isinstance(self.outputs, dict) or not self.outputs:
            raise Unsupported("the preprocessing_fn returned no outputs")  # the stock error says more
        self.sinks = self.graph.get_collection(tft.TENSOR_REPLACEMENTS)
        self.operations = self._operations()
        self.sources = [op for op in self.operations if isinstance(op.operation_def, tft.TensorSource)]
        self.users = {id(op): self._users(op) for op in self.sources}
        self._check_one_phase()
        self.fetches = [tensor for op in self.sources for tensor in op.operation_def.tensors]
        # The input columns the analyzers read (get_dependent_inputs needs the sinks' collection).
        self.needed = tft.get_dependent_inputs(self.graph, self.inputs, self.fetches)
        # As AnalyzeDataset: neither collection belongs in the SavedModel.
        self.graph.clear_collection(tft.TENSOR_REPLACEMENTS)
        self.asset_map = tft.get_asset_annotations(self.graph)
        tft.clear_asset_annotations(self.graph)

    def _operations(self) -> list:
        """Every analyzer operation the sinks need, inputs before their users."""
        ordered, seen = [], set()

        def visit(value_node):
            op = value_node.parent_operation
            if id(op) in seen:
                return
            seen.add(id(op))
            for parent in op.inputs:
                visit(parent)
            self._check(op)
            ordered.append(op)

        for sink in self.sinks:
            visit(sink.future)
        return ordered

    def _check(self, op) -> None:
        t, d = self._tft, op.operation_def
        frequency = t.VocabOrderingType.FREQUENCY
        supported = {
            t.TensorSource: True,
            # The combiner of tft.mean and tft.var: the one whose results executor_test
            # compares with Beam's (a quantiles or top-k combiner goes to Beam).
            t.CacheableCombineAccumulate: lambda: type(d.combiner) is t.WeightedMeanAndVarCombiner,
            t.CacheableCombineMerge: lambda: type(d.combiner) is t.WeightedMeanAndVarCombiner,
            t.ExtractCombineMergeOutputs: True,
            t.VocabularyAccumulate: lambda: d.vocab_ordering_type == frequency,
            t.VocabularyMerge: lambda: d.vocab_ordering_type == frequency,
            t.VocabularyCount: True,
            t.VocabularyPrune: lambda: d.key_fn is None and d.coverage_top_k is None
            and d.informativeness_threshold == float("-inf"),
            t.VocabularyOrderAndWrite: lambda: not d.fingerprint_shuffle and d.file_format == "text"
            and len(op.inputs) == 1,  # a second input is a list of reserved tokens
        }.get(type(d))
        if supported is None or (callable(supported) and not supported()):
            combiner = f" of a {type(d.combiner).__name__}" if hasattr(d, "combiner") else ""
            raise Unsupported(f"analyzer node {type(d).__name__}{combiner} ({d.label})")

    def _check_one_phase(self) -> None:
        """Every analyzer reads the raw inputs only: no input computed from another
        analyzer's result (AnalyzeDataset would run a second pass for those)."""
        analyzer = self._tft.InitializableGraphAnalyzer(
            self.graph, self.inputs, [(sink.tensor, False) for sink in self.sinks],
            self._tft.describe_path_as_analyzer_cache_hash)
        for op in self.sources:
            for tensor in op.operation_def.tensors:
                if not analyzer.ready_to_run(tensor):
                    raise Unsupported(f"{tensor.name} needs another analyzer's result (a second phase)")

    # -- the data pass ------------------------------------------------------------------

    def _accumulate(self) -> tuple:
        """({source operation: its accumulated state}, rows), one pass over the split."""
        fetches, needed = self.fetches, self.needed
        columns = sorted(needed)
        # Decoded as the projected TFXIO decodes (its schema, its tensor adapter), read with
        # TensorFlow's reader as the fast StatisticsGen reads: TFXIO's RecordBatches took
        # twice the CPU time at 1M rows (7.1 s vs 3.4 s).
        adapter = self._tfxio.Project(columns).TensorAdapter()
        decoder = example_coder.ExamplesToRecordBatchDecoder(
            tensor_representation_util.ProjectTensorRepresentationsInSchema(self._schema, columns).SerializeToString())
        states = {}
        for op in self.sources:
            user = self.users[id(op)]
            states[id(op)] = (user, collections.Counter() if self._is_vocabulary(user)
                              else user.operation_def.combiner.create_accumulator())
        rows = 0
        # Not entered as a context: that would make the traced graph the default one, and
        # TFXIO's reader (tf.data, eager) must run outside it.
        session = tf.compat.v1.Session(graph=self.graph)
        try:
            run = session.make_callable(fetches, feed_list=[needed[c] for c in columns])
            def decoded():
                for records in record_batches(self._files, READ_BATCH):
                    batch = decoder.DecodeBatch(records)
                    yield batch.num_rows, adapter.ToBatchTensors(batch, produce_eager_tensors=False)

            # Decoded a batch ahead in a thread (tfx_bsl releases the GIL), as StatisticsGen
            # reads, while the session and the combiners take the current batch.
            for batch_rows, tensors in prefetch.ahead(decoded()):
                rows += batch_rows
                values = iter(run(*[tensors[c] for c in columns]))
                for op in self.sources:
                    batch_values = tuple(next(values) for _ in op.operation_def.tensors)
                    user, state = states[id(op)]
                    if isinstance(state, collections.Counter):
                        (tokens,) = batch_values
                        state.update(tokens.tolist())  # as _flatten_value_to_list + Count.PerElement
                    else:
                        states[id(op)] = (user, user.operation_def.combiner.add_input(state, batch_values))
        finally:
            session.close()
        return states, rows

    def _users(self, source):
        """The one accumulate operation reading `source` (TFT makes one per analyzer)."""
        users = [op for op in self.operations if any(v.parent_operation is source for v in op.inputs)]
        if len(users) != 1 or not isinstance(users[0].operation_def, (self._tft.VocabularyAccumulate,
                                                                      self._tft.CacheableCombineAccumulate)):
            raise Unsupported(f"tensor source {source.operation_def.label} read by {len(users)} analyzers")
        return users[0]

    def _is_vocabulary(self, op) -> bool:
        return isinstance(op.operation_def, self._tft.VocabularyAccumulate)

    # -- the analyzer nodes, as TFT's Beam implementations compute them -------------------

    def _evaluate(self, states: dict, asset_dir: str) -> dict:
        """{id(operation): its output values (a tuple)}."""
        t = self._tft
        values = {}
        for source in self.sources:
            user, state = states[id(source)]
            values[id(user)] = (state,)
        for op in self.operations:
            if id(op) in values or isinstance(op.operation_def, t.TensorSource):
                continue
            d = op.operation_def
            inputs = [values[id(v.parent_operation)][v.value_index] for v in op.inputs]
            if isinstance(d, t.CacheableCombineMerge):
                values[id(op)] = (d.combiner.merge_accumulators(inputs),)
            elif isinstance(d, t.ExtractCombineMergeOutputs):
                outputs = op.inputs[0].parent_operation.operation_def.combiner.extract_output(inputs[0])
                if len(outputs) != d.num_outputs:
                    raise ValueError(f"analyzer {d.label} has {d.num_outputs} outputs, its combiner gave {len(outputs)}")
                values[id(op)] = tuple(outputs)
            elif isinstance(d, t.VocabularyMerge):  # sum per token, then (count, token)
                values[id(op)] = ([(count, token) for token, count in inputs[0].items()],)
            elif isinstance(d, t.VocabularyCount):
                values[id(op)] = (np.int64(max(len(inputs[0]), 1)),)
            elif isinstance(d, t.VocabularyPrune):
                values[id(op)] = (self._prune(d, inputs[0]),)
            elif isinstance(d, t.VocabularyOrderAndWrite):
                values[id(op)] = (self._write_vocabulary(d, inputs[0], asset_dir),)
            else:  # _check let it through: a bug here, not a user's mistake
                raise AssertionError(f"no evaluation for {type(d).__name__}")
        return values

    def _prune(self, d, counts: list) -> list:
        """analyzer_impls._ApplyThresholdsAndTopK without a key_fn."""
        if d.frequency_threshold and d.frequency_threshold > 0:
            counts = [(count, token) for count, token in counts if count >= d.frequency_threshold]
        if d.input_dtype != tf.string.name:
            counts = [(count, tf.compat.as_bytes(tf.compat.as_str_any(token))) for count, token in counts]
        if d.top_k is not None:
            counts = heapq.nlargest(d.top_k, counts) or [self._tft.empty_vocabulary_dummy(d.input_dtype)]
        return counts

    def _write_vocabulary(self, d, counts: list, asset_dir: str) -> np.ndarray:
        """analyzer_impls._VocabularyOrderAndWriteImpl for a text file: largest (count,
        token) first, the dummy token for an empty vocabulary, one token a line."""
        counts = sorted(counts, reverse=True) or [self._tft.empty_vocabulary_dummy(d.input_dtype)]
        path = os.path.join(asset_dir, d.vocab_filename)
        with tf.io.gfile.GFile(path, "wb") as f:
            for count, token in counts:
                f.write(tf.compat.as_bytes(f"{count} {tf.compat.as_str_any(token)}") if d.store_frequency
                        else token)
                f.write(b"\n")
        return np.array(path)

    # -- the artifact -----------------------------------------------------------------------

    def write(self, schema, output_path: str) -> int:
        """Writes the transform graph artifact; returns the number of examples analyzed."""
        temp = os.path.join(output_path, TEMP_DIR, uuid.uuid4().hex)
        tf.io.gfile.makedirs(os.path.join(temp, "assets"))
        states, rows = self._accumulate()
        values = self._evaluate(states, os.path.join(temp, "assets"))
        bindings = [(sink.tensor.name, sink.tensor.dtype, values[id(sink.future.parent_operation)][sink.future.value_index],
                     sink.is_asset_filepath) for sink in self.sinks]
        unbound, final = os.path.join(temp, "unbound"), os.path.join(temp, TRANSFORM_FN_DIR)
        self._write_unbound(unbound)
        self._bind(unbound, final, bindings)
        metadata = os.path.join(temp, TRANSFORMED_METADATA_DIR)
        metadata_io.write_metadata(self._transformed_metadata(final), metadata)
        if self.asset_map:
            with tf.io.gfile.GFile(os.path.join(metadata, ASSET_MAP), "w") as f:
                f.write(json.dumps(self.asset_map))
        metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema),
                                   os.path.join(output_path, RAW_METADATA_DIR))
        for name in (TRANSFORMED_METADATA_DIR, TRANSFORM_FN_DIR):
            tf.io.gfile.rename(os.path.join(temp, name), os.path.join(output_path, name), overwrite=True)
        tf.io.gfile.rmtree(os.path.join(output_path, TEMP_DIR))
        return rows

    def _write_unbound(self, path: str) -> None:
        """The traced graph with the sinks still placeholders (tft_beam's _CreateSavedModelImpl):
        outputs in sorted order, every table initializer kept."""
        outputs = collections.OrderedDict(sorted(self.outputs.items()))
        with self.graph.as_default(), tf.compat.v1.Session(graph=self.graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            self._tft.write_saved_transform_from_session(session, self.inputs, outputs, path)

    def _bind(self, unbound: str, path: str, bindings: list) -> None:
        """Each sink replaced by a constant, vocabulary paths as assets (tft_beam's
        _replace_tensors_with_constant_values)."""
        with tf.compat.v1.Graph().as_default() as graph:
            replacements = {}
            for name, dtype, value, is_asset in bindings:
                constant = tf.constant(value, dtype)
                if is_asset:
                    graph.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, constant)
                replacements[name] = constant
            with tf.compat.v1.Session(graph=graph) as session:
                inputs, outputs = self._tft.partially_apply_saved_transform_internal(unbound, {}, replacements)
                session.run(tf.compat.v1.global_variables_initializer())
                self._tft.write_saved_transform_from_session(session, inputs, outputs, path)

    def _transformed_metadata(self, saved_model: str) -> dataset_metadata.DatasetMetadata:
        """As tft_beam's deferred metadata: inferred from the final SavedModel."""
        with tf.compat.v1.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
            _, outputs = self._tft.partially_apply_saved_transform_internal(saved_model, {}, None)
            session.run(tf.compat.v1.global_variables_initializer())
            session.run(tf.compat.v1.tables_initializer())
            return dataset_metadata.DatasetMetadata(self._tft.infer_feature_schema(outputs, graph, session))
