"""Evaluator executor for a gate on the overall slice. Stock TFMA 0.47 takes each batch
apart into per-example extracts, slices and metric inputs in Python: 108-126 s for the
333k eval rows of a 1M-row run, about as long as all other kubetfx stages together.
The blessing needs one number per model, so this one streams the eval split in large
batches through each model's own signatures and accumulates the metric with numpy.

What it writes is TFMA's: the thresholds are checked by TFMA's validator, combined by
TFMA's writer code, and the metrics, validation result and eval config are written in
TFMA's files and formats (`tfma.load_metrics`, `tfma.load_validation_result` and
`tfma.load_eval_result` read them), then the blessing exactly as TFX's executor writes it.

Anything else (slices, other metrics, weights, a custom eval model or extractors, no
serialized-examples signature, a label no signature gives, a distributed Beam runner, a
TFMA whose writer names moved: components/upstream_seams.py) is handed to TFX's executor
unchanged, before anything is written.

After the blessing, a blessed model gets its acceptance test on the held-out test split
(acceptance.py), on either path."""
from __future__ import annotations

import contextlib
import glob
import os
import time

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from absl import logging
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.proto import metrics_for_slice_pb2
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as tfx_executor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs as keys
from tfx.utils import io_utils, json_utils, path_utils, proto_utils

from kubetfx.components import beam_runner, upstream_seams
from kubetfx.components.evaluator import acceptance, gate, records

OVERALL = ()  # TFMA's slice key of the overall slice


class Unsupported(Exception):
    """This evaluation needs TFMA's general path."""


def _accuracy(labels: np.ndarray, predictions: np.ndarray) -> tuple:
    """Keras SparseCategoricalAccuracy: argmax of the class scores equals the label id."""
    labels = labels.reshape(len(labels), -1)
    if labels.shape[1] != 1 or predictions.ndim != 2 or predictions.shape[1] < 2:
        raise Unsupported(f"labels {labels.shape} / predictions {predictions.shape}")
    labelled = labels[:, 0] >= 0  # preprocessing.MISSING_LABEL: a row without a label
    return float(np.sum(np.argmax(predictions[labelled], axis=1) == labels[labelled, 0])), int(np.sum(labelled))


def _absolute_error(labels: np.ndarray, predictions: np.ndarray) -> tuple:
    """Keras MeanAbsoluteError for one output value per example."""
    labels, predictions = labels.reshape(len(labels), -1), predictions.reshape(len(predictions), -1)
    if labels.shape[1] != 1 or predictions.shape != labels.shape:
        raise Unsupported(f"labels {labels.shape} / predictions {predictions.shape}")
    errors = np.abs(labels.astype(np.float64) - predictions)
    labelled = np.isfinite(labels.astype(np.float64))  # a row without a target is NaN
    return float(np.sum(errors[labelled])), int(np.sum(labelled))


# TFMA metric class -> (metric key name, per-batch (sum, count)); the value is sum / count.
METRICS = {
    "SparseCategoricalAccuracy": ("sparse_categorical_accuracy", _accuracy),
    "MeanAbsoluteError": ("mean_absolute_error", _absolute_error),
}
_TFMA_METRIC_MODULES = ("", "tf_keras.metrics", "tensorflow.keras.metrics", "tf.keras.metrics")


def _check_config(eval_config: tfma.EvalConfig) -> list:
    """The MetricKeys to compute, if TFMA would compute exactly these and nothing else."""
    if [s for s in eval_config.slicing_specs if s != tfma.SlicingSpec()] or eval_config.cross_slicing_specs:
        raise Unsupported("slices other than the overall one")
    options = eval_config.options
    if (not options.HasField("include_default_metrics") or options.include_default_metrics.value
            or options.compute_confidence_intervals.value):
        raise Unsupported("default metrics or confidence intervals")
    for spec in eval_config.model_specs:
        if (not spec.label_key or not spec.prediction_key or spec.example_weight_key
                or spec.label_keys or spec.prediction_keys or spec.example_weight_keys
                or tfma.utils.get_model_type(spec) == tfma.TFMA_EVAL):
            raise Unsupported(f"model spec {spec.name!r}")
    metric_keys = []
    for metrics_spec in eval_config.metrics_specs:
        if (metrics_spec.output_names or metrics_spec.HasField("binarize") or metrics_spec.HasField("aggregate")
                or metrics_spec.query_key or metrics_spec.HasField("example_weights")):
            raise Unsupported("metrics spec options")
        for metric in metrics_spec.metrics:
            if metric.class_name not in METRICS or metric.module not in _TFMA_METRIC_MODULES or metric.config:
                raise Unsupported(f"metric {metric.class_name}")
            for model_name in metrics_spec.model_names:
                metric_keys.append(metric_types.MetricKey(
                    name=METRICS[metric.class_name][0], model_name=model_name, example_weighted=False))
    if not metric_keys:
        raise Unsupported("no metrics")
    return metric_keys


def _examples_signature(saved_model, name: str):
    """The signature as a function of a batch of serialized tf.Examples."""
    if name not in saved_model.signatures:
        raise Unsupported(f"no signature {name!r}")
    function = saved_model.signatures[name]
    args, kwargs = function.structured_input_signature
    if args or len(kwargs) != 1:
        raise Unsupported(f"signature {name!r} takes {len(args) + len(kwargs)} inputs")
    (input_name, spec), = kwargs.items()
    if spec.dtype != tf.string or spec.shape.rank != 1:
        raise Unsupported(f"signature {name!r} does not take serialized examples")
    return lambda batch: function(**{input_name: batch})


class _Model:
    """One model spec: where its predictions and labels come from in each batch."""

    def __init__(self, spec, path: str):
        self.spec = spec
        self.path = path
        loaded = tf.saved_model.load(path)
        self._loaded = loaded  # the signatures need the loaded object alive
        self.predict = _examples_signature(loaded, spec.signature_name or "serving_default")
        self.preprocess = [_examples_signature(loaded, n) for n in spec.preprocessing_function_names]

    def labels_and_predictions(self, batch) -> tuple:
        outputs = self.predict(batch)
        if self.spec.prediction_key not in outputs:
            raise Unsupported(f"no output {self.spec.prediction_key!r}")
        for preprocess in self.preprocess:  # TFMA looks in transformed features first
            features = preprocess(batch)
            if self.spec.label_key in features:
                labels = features[self.spec.label_key]
                if isinstance(labels, tf.SparseTensor) or labels.dtype == tf.string:
                    raise Unsupported("label is not a dense number")
                return labels.numpy(), outputs[self.spec.prediction_key].numpy()
        raise Unsupported(f"label {self.spec.label_key!r} is not among the transformed features")


def _split_files(examples, splits: list) -> tuple:
    if examples_utils.get_payload_format(examples) != example_gen_pb2.FORMAT_TF_EXAMPLE:
        raise Unsupported("examples are not tf.Examples")
    files = sorted(f for split in splits for uri in artifact_utils.get_split_uris([examples], split)
                   for f in glob.glob(io_utils.all_files_pattern(uri)))
    gzip = [f.endswith(".gz") for f in files]
    if not files or (any(gzip) and not all(gzip)):
        raise Unsupported("no eval files, or mixed compression")
    return files, "GZIP" if all(gzip) else ""


def compute_metrics(eval_config, models: list, files: list, compression: str, metric_keys: list) -> tuple:
    """({MetricKey: value} over every example, in one pass for all models; the rows the
    metrics left out, having no label)."""
    sums = {key: [0.0, 0] for key in metric_keys}
    rows = 0
    batch_sum = dict(METRICS.values())  # metric key name -> (sum, count) of a batch
    keys_of = [(model, [k for k in metric_keys if k.model_name == model.spec.name]) for model in models]
    for batch in records.batches(files, compression):
        rows += int(batch.shape[0])
        for model, model_keys in keys_of:
            labels, predictions = model.labels_and_predictions(batch)
            for key in model_keys:
                total, count = batch_sum[key.name](labels, predictions)
                sums[key][0] += total
                sums[key][1] += count
    if not all(count for _, count in sums.values()):
        raise Unsupported("no examples")
    # Keras metrics divide in float32; so does TFMA's wrapper around them.
    metrics = {key: np.float32(total) / np.float32(count) for key, (total, count) in sums.items()}
    baseline = tfma.utils.get_baseline_model_spec(eval_config)
    if baseline:  # TFMA's diff metrics: candidate minus baseline
        for key in list(metrics):
            if key.model_name != baseline.name:
                metrics[key.make_diff_key()] = metrics[key] - metrics[key.make_baseline_key(baseline.name)]
    return metrics, rows - max(count for _, count in sums.values())


def write_results(output_uri: str, eval_config, metrics: dict, models: list, data_location: str,
                  writers=None) -> None:
    """TFMA's artifacts for one overall slice: metrics, (empty) plots and attributions, the
    validation result, the eval config. `writers`: TFMA's writer names (upstream_seams.tfma())."""
    writers = writers or upstream_seams.tfma()
    if writers is None:
        raise Unsupported("TFMA's writer names moved (see the log)")
    validation = metrics_validator.validate_metrics((OVERALL, metrics), eval_config)
    combine = writers.CombineValidations(eval_config, rubber_stamp=False)
    validation = combine.extract_output(combine.add_input(combine.create_accumulator(), validation))
    records = {
        "metrics-00000-of-00001.tfrecord": writers.convert_slice_metrics_to_proto((OVERALL, metrics), []),
        "plots-00000-of-00001.tfrecord": metrics_for_slice_pb2.PlotsForSlice(slice_key={}),
        "attributions-00000-of-00001.tfrecord": metrics_for_slice_pb2.AttributionsForSlice(slice_key={}),
        "validations.tfrecord": validation,
    }
    tf.io.gfile.makedirs(output_uri)
    for name, record in records.items():
        with tf.io.TFRecordWriter(os.path.join(output_uri, name)) as writer:
            writer.write(record.SerializeToString())
    locations = {model.spec.name: model.path for model in models}
    io_utils.write_string_file(
        os.path.join(output_uri, "eval_config.json"),
        writers.serialize_eval_run(eval_config, data_location, "tfrecords", locations))


def without_empty_baseline(input_dict: dict) -> dict:
    """ServedBaseline outputs a Model without a SavedModel when nothing is served yet: that
    means "no baseline" (TFX's rubber stamp), for our path and TFX's alike."""
    from kubetfx.components.evaluator.served_baseline import has_saved_model

    baseline = input_dict.get(keys.BASELINE_MODEL_KEY)
    if baseline and not all(has_saved_model(model) for model in baseline):
        logging.info("Evaluator: the baseline Model holds no SavedModel (nothing served yet): no baseline")
        return {key: value for key, value in input_dict.items() if key != keys.BASELINE_MODEL_KEY}
    return input_dict


def acceptance_metric(exec_properties, input_dict, examples, models: list) -> tuple:
    """(metric key name, value, examples) of the candidate model on the test split: the
    first gate metric of the eval config, computed as compute_metrics computes it."""
    eval_config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[keys.EVAL_CONFIG_KEY], eval_config)
    classes = [m.class_name for s in eval_config.metrics_specs for m in s.metrics if m.class_name in METRICS]
    if not classes:
        raise Unsupported("no gate metric kubetfx computes (SparseCategoricalAccuracy, MeanAbsoluteError)")
    name, batch_sum = METRICS[classes[0]]
    candidate = next((m for m in models if not m.spec.is_baseline), None)
    if candidate is None:  # TFMA's general path ran: the model is loaded here
        spec = next((s for s in eval_config.model_specs if not s.is_baseline), None)
        if spec is None:
            raise Unsupported("no candidate model spec")
        artifact = artifact_utils.get_single_instance(input_dict[keys.MODEL_KEY])
        candidate = _Model(spec, path_utils.serving_model_path(artifact.uri, path_utils.is_old_model_artifact(artifact)))
    files, compression = _split_files(examples, [acceptance.SPLIT])
    total, count = 0.0, 0
    for batch in records.batches(files, compression):
        batch_total, batch_count = batch_sum(*candidate.labels_and_predictions(batch))
        total, count = total + batch_total, count + batch_count
    if not count:
        raise Unsupported("the test split is empty")
    return name, float(np.float32(total) / np.float32(count)), count


def _eval_files(input_dict, exec_properties) -> tuple:
    """(files, compression, splits) of the splits the blessing is computed on."""
    all_examples = input_dict.get(keys.EXAMPLES_KEY) or []
    if len(all_examples) != 1:
        raise Unsupported(f"{len(all_examples)} Examples artifacts")
    splits = json_utils.loads(exec_properties.get(keys.EXAMPLE_SPLITS_KEY, "null")) or ["eval"]
    return (*_split_files(all_examples[0], splits), splits)


def _label_key(eval_config) -> str:
    return next((s.label_key for s in eval_config.model_specs if not s.is_baseline and s.label_key), "")


def resolve_tolerance(input_dict, exec_properties) -> tuple:
    """(exec_properties with the change tolerance widened to one labelled eval example
    where change_tolerance is finer, gate.Tolerance or None): see gate.py."""
    if not input_dict.get(keys.BASELINE_MODEL_KEY) or not exec_properties.get(keys.EVAL_CONFIG_KEY):
        return exec_properties, None  # no comparison with a served model
    eval_config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[keys.EVAL_CONFIG_KEY], eval_config)
    tolerance = gate.configured(eval_config)
    label = _label_key(eval_config)
    if tolerance is None or not label:
        return exec_properties, tolerance
    try:
        files, compression, _ = _eval_files(input_dict, exec_properties)
    except Unsupported as reason:
        logging.info("Evaluator: change_tolerance as configured (%s)", reason)
        return exec_properties, tolerance
    # Only a split smaller than 1/change_tolerance can need the floor: count no further.
    limit = gate.SCAN_LIMIT if tolerance.configured <= 0 else min(gate.SCAN_LIMIT, int(1 / tolerance.configured) + 1)
    labelled, _ = gate.count_labelled(files, compression, label, limit)
    tolerance = gate.resolved(eval_config, labelled) or tolerance
    logging.info("Evaluator: %s", tolerance.line())
    return {**exec_properties, keys.EVAL_CONFIG_KEY: proto_utils.proto_to_json(eval_config)}, tolerance


def _record_tolerance(output_dict, tolerance) -> None:
    blessing = (output_dict.get(keys.BLESSING_KEY) or [None])[0]
    if blessing is not None and tolerance is not None:
        gate.write(blessing, tolerance)


@contextlib.contextmanager
def labelled_examples(input_dict, output_dict, exec_properties):
    """(input_dict for TFMA's general path, the eval rows left out or None where not
    counted): where the eval splits have rows without a label, Examples holding only the
    labelled ones (TFMA counted the others as misses), written beside the evaluation (where
    every Beam worker reads) and removed afterwards."""
    eval_config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties.get(keys.EVAL_CONFIG_KEY) or "{}", eval_config)
    label, evaluation = _label_key(eval_config), output_dict.get(keys.EVALUATION_KEY)
    try:
        _eval_files(input_dict, exec_properties)
    except Unsupported:
        label = ""
    if not label or not evaluation:
        yield input_dict, None
        return
    original = input_dict[keys.EXAMPLES_KEY][0]
    root = artifact_utils.get_single_uri(evaluation).rstrip("/") + "-labelled-examples"
    try:
        left_out = 0
        for split in json_utils.loads(exec_properties.get(keys.EXAMPLE_SPLITS_KEY, "null")) or ["eval"]:
            files, compression = _split_files(original, [split])
            folder = os.path.join(root, f"Split-{split}")
            tf.io.gfile.makedirs(folder)
            left_out += gate.labelled_copy(files, compression, label, folder)
        if not left_out:
            yield input_dict, 0
            return
        logging.info("Evaluator: %d eval rows without a label left out of TFMA's evaluation", left_out)
        proto = type(original.mlmd_artifact)()
        proto.CopyFrom(original.mlmd_artifact)
        copy = artifact_utils.deserialize_artifact(original.artifact_type, proto)
        copy.uri = root
        yield {**input_dict, keys.EXAMPLES_KEY: [copy]}, left_out
    finally:
        if tf.io.gfile.exists(root):
            tf.io.gfile.rmtree(root)


def name_the_eval_split(input_dict, output_dict, exec_properties) -> None:
    """TFMA's eval_config.json, after its general path, names the eval split's own files
    as the batched path's does. TFMA wrote "<user provided PCollection>" (TFX hands it
    records, not a path), and where rows had no label it read the labelled-only copy,
    removed after the evaluation: neither is a file a reader of the evaluation can open.
    The rows it was not given are counted on the ModelEvaluation (gate.ROWS_WITHOUT_LABEL)."""
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2

    evaluation = (output_dict.get(keys.EVALUATION_KEY) or [None])[0]
    path = None if evaluation is None else os.path.join(evaluation.uri, "eval_config.json")
    if path is None or not tf.io.gfile.exists(path):  # no evaluation, or its config output disabled
        return
    try:
        files, _, _ = _eval_files(input_dict, exec_properties)
    except Unsupported:  # not one artifact of tf.Examples: TFMA's words stand
        return
    run = json_format.Parse(io_utils.read_string_file(path), config_pb2.EvalRun())
    run.data_location, run.file_format = ",".join(files), "tfrecords"
    io_utils.write_string_file(path, json_format.MessageToJson(run))


def _record_rows_without_label(output_dict, left_out) -> None:
    evaluation = (output_dict.get(keys.EVALUATION_KEY) or [None])[0]
    if evaluation is not None and left_out is not None:
        evaluation.set_int_custom_property(gate.ROWS_WITHOUT_LABEL, int(left_out))


class Executor(tfx_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        input_dict = without_empty_baseline(input_dict)
        # One eval config for both paths: the change tolerance the eval split resolves (gate.py).
        exec_properties, tolerance = resolve_tolerance(input_dict, exec_properties)
        try:
            eval_config, models, files, compression, metric_keys, writers = self._plan(input_dict, exec_properties)
            started = time.monotonic()
            metrics, left_out = compute_metrics(eval_config, models, files, compression, metric_keys)
        except Unsupported as reason:  # raised before anything is written
            logging.info("Evaluator: TFMA's general path (%s)", reason)
            with labelled_examples(input_dict, output_dict, exec_properties) as (tfma_inputs, left_out):
                super().Do(tfma_inputs, output_dict, exec_properties)
            name_the_eval_split(input_dict, output_dict, exec_properties)
            _record_rows_without_label(output_dict, left_out)
            _record_tolerance(output_dict, tolerance)
            return self._accept(input_dict, output_dict, exec_properties, [])
        self._log_startup(input_dict, output_dict, exec_properties)
        output_uri = artifact_utils.get_single_uri(output_dict[keys.EVALUATION_KEY])
        write_results(output_uri, eval_config, metrics, models, ",".join(files), writers)
        _record_rows_without_label(output_dict, left_out)
        logging.info("Evaluator: %s over %d files in %.1f s", {str(k): float(v) for k, v in metrics.items()},
                     len(files), time.monotonic() - started)
        # As TFX: no thresholds, no blessing (nothing is blessed by accident).
        if tfma.metrics.metric_thresholds_from_metrics_specs(eval_config.metrics_specs, eval_config=eval_config):
            self._bless(input_dict, output_dict, exec_properties, output_uri)
        _record_tolerance(output_dict, tolerance)
        self._accept(input_dict, output_dict, exec_properties, models)

    @staticmethod
    def _accept(input_dict, output_dict, exec_properties, models: list) -> None:
        """The acceptance test (acceptance.py) of a model the eval split blessed, after the
        blessing is decided: on the test split, never read before this point."""
        blessing = (output_dict.get(keys.BLESSING_KEY) or [None])[0]
        if (blessing is None
                or blessing.get_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY) != constants.BLESSED_VALUE):
            return  # nothing blessed: nothing can be pushed, nothing to accept
        # TFX's Evaluator takes several Examples artifacts; the held-out split is one
        # ExampleGen's, so only a single artifact can hold it.
        all_examples = input_dict[keys.EXAMPLES_KEY]
        examples = all_examples[0] if len(all_examples) == 1 else None
        threshold = exec_properties.get(acceptance.THRESHOLD_KEY)
        threshold = None if threshold in (None, "") else float(threshold)
        held_out = examples is not None and acceptance.SPLIT in artifact_utils.decode_split_names(examples.split_names)
        if not held_out and threshold is None:
            return  # examples of another ExampleGen: nothing held out, no gate asked for
        started = time.monotonic()
        try:
            if not held_out:  # a gate asked for cannot pass unmeasured
                raise Unsupported(f"the examples have no {acceptance.SPLIT!r} split")
            metric, value, count = acceptance_metric(exec_properties, input_dict, examples, models)
            result = acceptance.Acceptance(metric, value, count, threshold, acceptance.judge(metric, value, threshold),
                                           acceptance.higher_is_better(metric))
        except Unsupported as reason:
            result = acceptance.Acceptance(None, None, threshold=threshold, error=str(reason),
                                           passed=None if threshold is None else False)
        acceptance.write(blessing, result)
        logging.info("Evaluator: acceptance: %s in %.1f s", result.line(), time.monotonic() - started)
        refusal = result.refusal()
        if refusal:  # written over the blessing: every runner's Pusher skips it, as TFX's does
            logging.warning("Evaluator: %s", refusal)
            blessed_file = os.path.join(blessing.uri, constants.BLESSED_FILE_NAME)
            if tf.io.gfile.exists(blessed_file):
                tf.io.gfile.remove(blessed_file)
            io_utils.write_string_file(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME), "")
            blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY, constants.NOT_BLESSED_VALUE)

    def _plan(self, input_dict, exec_properties) -> tuple:
        if any(exec_properties.get(k) for k in (keys.MODULE_FILE_KEY, keys.MODULE_PATH_KEY)):
            raise Unsupported("a module file (custom eval model or extractors)")
        if not beam_runner.runs_in_process(self._beam_pipeline_args):
            raise Unsupported(f"{beam_runner.out_of_process(self._beam_pipeline_args)} (scale-out)")
        if not exec_properties.get(keys.EVAL_CONFIG_KEY) or not input_dict.get(keys.MODEL_KEY):
            raise Unsupported("no eval_config or no model")
        has_baseline = bool(input_dict.get(keys.BASELINE_MODEL_KEY))
        eval_config = tfma.EvalConfig()
        proto_utils.json_to_proto(exec_properties[keys.EVAL_CONFIG_KEY], eval_config)
        # As TFX's executor (rubber stamp: no baseline, no change thresholds), then as TFMA's
        # ExtractEvaluateAndWriteResults, so the config checked and written is TFMA's.
        eval_config = tfma.utils.update_eval_config_with_defaults(eval_config, has_baseline=has_baseline,
                                                                  rubber_stamp=True)
        tfma.utils.verify_eval_config(eval_config)
        eval_config = tfma.utils.update_eval_config_with_defaults(eval_config, has_baseline=has_baseline)
        metric_keys = _check_config(eval_config)
        splits = json_utils.loads(exec_properties.get(keys.EXAMPLE_SPLITS_KEY, "null")) or ["eval"]
        files, compression = _split_files(artifact_utils.get_single_instance(input_dict[keys.EXAMPLES_KEY]), splits)
        writers = upstream_seams.tfma()  # after every other reason: its log line only when it alone decides
        if writers is None:
            raise Unsupported("TFMA's writer names moved")
        models = []  # loaded last: the costly step, after every cheaper reason to hand over
        for spec in eval_config.model_specs:
            key = keys.BASELINE_MODEL_KEY if spec.is_baseline else keys.MODEL_KEY
            artifact = artifact_utils.get_single_instance(input_dict[key])
            path = path_utils.serving_model_path(artifact.uri, path_utils.is_old_model_artifact(artifact))
            models.append(_Model(spec, path))
        return eval_config, models, files, compression, metric_keys, writers

    @staticmethod
    def _bless(input_dict, output_dict, exec_properties, output_uri: str) -> None:
        """The ModelBlessing as TFX's Evaluator executor writes it."""
        blessing = artifact_utils.get_single_instance(output_dict[keys.BLESSING_KEY])
        model = input_dict[keys.MODEL_KEY][0]
        blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY, model.uri)
        blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY, model.id)
        if input_dict.get(keys.BASELINE_MODEL_KEY):
            baseline = input_dict[keys.BASELINE_MODEL_KEY][0]
            blessing.set_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY, baseline.uri)
            blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY, baseline.id)
        if "current_component_id" in exec_properties:
            blessing.set_string_custom_property("component_id", exec_properties["current_component_id"])
        blessed = tfma.load_validation_result(output_uri).validation_ok
        io_utils.write_string_file(os.path.join(
            blessing.uri, constants.BLESSED_FILE_NAME if blessed else constants.NOT_BLESSED_FILE_NAME), "")
        blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                         constants.BLESSED_VALUE if blessed else constants.NOT_BLESSED_VALUE)
        logging.info("Blessing result %s written to %s.", blessed, blessing.uri)
