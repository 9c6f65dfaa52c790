"""Every private upstream name kubetfx's fast paths use, resolved in one place, one function
per library, at plan time: TFDV's statistics internals (the fast StatisticsGen), TFMA's
writers (the fast Evaluator), TensorFlow's record writer (ExampleGen), TFX's executor
runner (the container entrypoint), the stock InfraValidator's defaults and TFT's tracing,
analyzer nodes and SavedModel writers (the fast Transform).
tests/test_layering.py checks that no other module reaches a private upstream name.

These names are not API: an upgrade may move or reshape one. A stage asks its library's
function before it writes anything; when a name is gone, or no longer takes the
parameters kubetfx passes, the function logs one line saying which and returns None, and
the stage hands the work to the stock executor (or, where the private name only saved
time, to the public call that does the same), instead of failing mid-stage. Each
function imports only its own library, so asking costs nothing the stage does not load
anyway. The names and versions are the ones pinned in requirements.lock (TFDV 1.16,
TFMA 0.47, TF 2.16, TFX 1.16, TFT 1.16)."""
from __future__ import annotations

import importlib
import inspect
from types import SimpleNamespace
from typing import Optional

from absl import logging

# {what the caller calls it: (module, attribute path, the leading parameters kubetfx passes,
# or None where the object has no readable signature)}
TFDV = {
    "split_generator_types": ("tensorflow_data_validation.statistics.stats_impl", "_split_generator_types",
                              ("generators", "num_partitions")),
    "CombinerStatsGeneratorsCombineFn": ("tensorflow_data_validation.statistics.stats_impl",
                                         "_CombinerStatsGeneratorsCombineFn", ("generators", "desired_batch_size")),
    "to_topk_tuples": ("tensorflow_data_validation.statistics.generators.top_k_uniques_stats_generator",
                       "_to_topk_tuples",
                       ("sliced_record_batch", "bytes_features", "categorical_numeric_types", "example_weight_map")),
}
TFMA = {
    "serialize_eval_run": ("tensorflow_model_analysis.writers.eval_config_writer", "_serialize_eval_run",
                           ("eval_config", "data_location", "file_format", "model_locations")),
    "CombineValidations": ("tensorflow_model_analysis.writers.metrics_plots_and_validations_writer",
                           "CombineValidations", ("eval_config", "rubber_stamp")),
    "convert_slice_metrics_to_proto": ("tensorflow_model_analysis.writers.metrics_plots_and_validations_writer",
                                       "convert_slice_metrics_to_proto", ("metrics", "add_metrics_callbacks")),
}
TENSORFLOW = {
    # pybind11: no signature to read; a changed one fails the first write, in the test suite.
    "record_writer_write": ("tensorflow.python.lib.io._pywrap_record_io", "RecordWriter.write", None),
}
TFX = {
    "run_executor": ("tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor", "_run_executor",
                     ("args", "beam_args")),
}
# TFT's internals outside its public API (tensorflow_transform/__init__ and beam/): how
# tft_beam.AnalyzeDataset traces the preprocessing_fn, finds its analyzers and writes the
# transform graph (beam/impl.py, beam/analysis_graph_builder.py, beam/analyzer_impls.py).
_TFT_NODES = "tensorflow_transform.analyzer_nodes"
_TFT_SAVED = "tensorflow_transform.saved.saved_transform_io"
TFT = {
    "trace_preprocessing_function": ("tensorflow_transform.impl_helper", "trace_preprocessing_function",
                                     ("preprocessing_fn", "input_specs", "use_tf_compat_v1")),
    "InitializableGraphAnalyzer": ("tensorflow_transform.graph_tools", "InitializableGraphAnalyzer",
                                   ("graph", "input_signature", "replaced_tensors_ready", "translate_path_fn")),
    "describe_path_as_analyzer_cache_hash": ("tensorflow_transform.graph_tools",
                                             "describe_path_as_analyzer_cache_hash", ("x", "parents")),
    "get_dependent_inputs": ("tensorflow_transform.graph_tools", "get_dependent_inputs",
                             ("graph", "input_tensors", "output_tensors")),
    "get_asset_annotations": ("tensorflow_transform.annotators", "get_asset_annotations", ("graph",)),
    "clear_asset_annotations": ("tensorflow_transform.annotators", "clear_asset_annotations", ("graph",)),
    "empty_vocabulary_dummy": ("tensorflow_transform.analyzers", "get_empy_vocabulary_dummy_value", ("dtype",)),
    "VocabOrderingType": ("tensorflow_transform.analyzers", "_VocabOrderingType", None),
    "WeightedMeanAndVarCombiner": ("tensorflow_transform.analyzers", "WeightedMeanAndVarCombiner",
                                   ("output_numpy_dtype", "output_shape")),
    "infer_feature_schema": ("tensorflow_transform.schema_inference", "infer_feature_schema",
                             ("features", "graph", "session")),
    "write_saved_transform_from_session": (_TFT_SAVED, "write_saved_transform_from_session",
                                           ("session", "inputs", "outputs", "export_path")),
    "partially_apply_saved_transform_internal": (_TFT_SAVED, "partially_apply_saved_transform_internal",
                                                 ("saved_model_dir", "logical_input_map", "tensor_replacement_map")),
    # The analyzer nodes the fast path computes, by the fields it reads; any other node
    # (a quantile, a mutual-information vocabulary, a packed combiner) goes to Beam.
    "TensorSource": (_TFT_NODES, "TensorSource", ("tensors",)),
    "CacheableCombineAccumulate": (_TFT_NODES, "CacheableCombineAccumulate", ("combiner",)),
    "CacheableCombineMerge": (_TFT_NODES, "CacheableCombineMerge", ("combiner",)),
    "ExtractCombineMergeOutputs": (_TFT_NODES, "ExtractCombineMergeOutputs", ("output_tensor_info_list",)),
    "VocabularyAccumulate": (_TFT_NODES, "VocabularyAccumulate", ("vocab_ordering_type", "input_dtype")),
    "VocabularyMerge": (_TFT_NODES, "VocabularyMerge", ("vocab_ordering_type",)),
    "VocabularyCount": (_TFT_NODES, "VocabularyCount", ("label",)),
    "VocabularyPrune": (_TFT_NODES, "VocabularyPrune",
                        ("top_k", "frequency_threshold", "input_dtype", "informativeness_threshold",
                         "coverage_top_k", "coverage_frequency_threshold", "coverage_informativeness_threshold",
                         "key_fn")),
    "VocabularyOrderAndWrite": (_TFT_NODES, "VocabularyOrderAndWrite",
                                ("vocab_filename", "store_frequency", "fingerprint_shuffle", "file_format",
                                 "input_dtype", "input_is_sorted")),
}
_INFRA = "tfx.components.infra_validator.executor"
TFX_INFRA_VALIDATOR = {
    "num_tries": (_INFRA, "_DEFAULT_NUM_TRIES", None),
    "max_loading_time_sec": (_INFRA, "_DEFAULT_MAX_LOADING_TIME_SEC", None),
    "polling_interval_sec": (_INFRA, "_DEFAULT_POLLING_INTERVAL_SEC", None),
}
# TFX 1.16's values of those defaults, kept when an upgrade moves the names.
TFX_1_16_INFRA_VALIDATOR = {"num_tries": 5, "max_loading_time_sec": 300, "polling_interval_sec": 1}


def resolve(names: dict, stage: str, fallback: str) -> Optional[SimpleNamespace]:
    """The objects `names` describes, or None after one log line naming the first one that
    is gone or changed and what `stage` does instead (`fallback`)."""
    found = {}
    for key, (module, attribute, parameters) in names.items():
        where = f"{module}.{attribute}"
        try:
            value = importlib.import_module(module)
            for part in attribute.split("."):
                value = getattr(value, part)
        except (ImportError, AttributeError):
            logging.warning("kubetfx: %s: %s is gone (an upgrade moved it): %s", stage, where, fallback)
            return None
        if parameters is not None:
            try:
                actual = tuple(inspect.signature(value).parameters)
            except (TypeError, ValueError):
                actual = ()
            if actual[:len(parameters)] != parameters:
                logging.warning("kubetfx: %s: %s takes %s, not %s (an upgrade changed it): %s",
                                stage, where, actual, parameters, fallback)
                return None
        found[key] = value
    return SimpleNamespace(**found)


def tfdv() -> Optional[SimpleNamespace]:
    return resolve(TFDV, "StatisticsGen", "the stock executor runs")


def tfma() -> Optional[SimpleNamespace]:
    return resolve(TFMA, "Evaluator", "the stock executor runs")


def tensorflow() -> Optional[SimpleNamespace]:
    return resolve(TENSORFLOW, "ExampleGen", "records go through the public TFRecordWriter.write (same bytes)")


def tft() -> Optional[SimpleNamespace]:
    """TFT's names, plus TENSOR_REPLACEMENTS (the graph collection of its analyzers' sinks)."""
    found = resolve(TFT, "Transform", "the stock executor runs")
    if found is None:
        return None
    try:
        found.TENSOR_REPLACEMENTS = importlib.import_module(_TFT_NODES).TENSOR_REPLACEMENTS
    except AttributeError:
        logging.warning("kubetfx: Transform: %s.TENSOR_REPLACEMENTS is gone (an upgrade moved it): "
                        "the stock executor runs", _TFT_NODES)
        return None
    return found


def tfx() -> Optional[SimpleNamespace]:
    return resolve(TFX, "entrypoint", "the runner's public main() runs the executor")


def tfx_infra_validator_defaults() -> SimpleNamespace:
    """The stock InfraValidator's defaults (tries, loading time, polling interval), never
    None: TFX 1.16's values when the names moved."""
    return resolve(TFX_INFRA_VALIDATOR, "InfraValidator", "TFX 1.16's defaults (5 tries, 300 s, 1 s) apply") \
        or SimpleNamespace(**TFX_1_16_INFRA_VALIDATOR)
