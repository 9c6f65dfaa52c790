"""The pushed model for runtimes other than TensorFlow: an ONNX copy of its network,
written into each version the Pusher publishes, so a team can run it with onnxruntime (or
any ONNX runtime) where TensorFlow is not wanted.

What converts and what does not (tf2onnx 1.17.0, onnx 1.17.0, opset 17; see
docs/serving-and-monitoring.md): the SavedModel's `serving_default` takes serialized
tf.Examples and runs the TFT transform inside; tf2onnx refuses three of its ops,
ParseExampleV2 (the tf.Example parsing), StringToHashBucketFast (TFT's out-of-vocabulary
bucket in `compute_and_apply_vocabulary`) and SparseConcat (TFT's handling of optional
columns). So the ONNX file holds the trained Keras network, after the transform: its inputs
are the network's own, by name (for the built-in model, trainer/model.py `pack`: `numeric`,
float32 [batch, float features] and `categories`, int64 [batch, vocabulary features], from
the `transform_features` signature's outputs); its outputs are the serving signature's:
`probabilities`, `class_ids` and `classes` for classification, `predictions` for regression.

Where: `<version>/assets.extra/kubetfx/model.onnx`, beside the training summary
(training_summary.py): TF Serving and the SavedModel loader read nothing there, and the
Pusher's "same model already served" check leaves it out (it is derived from the model),
so a re-run adds no version (and a version first pushed without it, by an older kubetfx,
gets it when the same model is pushed again: serving_dir._add_missing).

Never blocks a push: any failure is one log line and `export` returns no file with the
reason, which the Pusher records on the PushedModel artifact.

`start(model_path)` converts ahead, in a thread: the in-process runner calls it as the
Trainer ends (pipelines/run/local_runner.py), so the conversion (0.7-0.9 s on the embedded
data, most of the Pusher's time) runs while the InfraValidator waits on its model server
beside the Evaluator, instead of after both. `export` of that path then takes its result
(the same function, the same bytes); a path nobody started is converted on the spot, as a
stage container does. A conversion no Pusher took (the model was not blessed, or the run
failed first) is dropped by `discard` when the run ends, after its thread has ended: the
thread reads the model's files, which may go with the run (a test's temporary home)."""
from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
from typing import NamedTuple

from absl import logging

from kubetfx.components.pusher import training_summary

ONNX_FILE = f"{training_summary.DIRECTORY}/model.onnx"
# Opset 17: onnx 1.12 and onnxruntime 1.13 onwards read it, and it has every op this network uses.
OPSET = 17
LABEL_VOCABULARY_ASSET = "label"  # transform/preprocessing.py LABEL_VOCABULARY: the class names
PROBABILITIES, CLASS_IDS, CLASSES, PREDICTIONS = "probabilities", "class_ids", "classes", "predictions"
# The PushedModel artifact's custom property: "exported in N s" or "not exported: why".
OUTCOME_PROPERTY = "onnx_export"
SERVING_SIGNATURE = "serving_default"
# A conversion started ahead that has not ended by then is stuck: the push goes on without it.
AHEAD_TIMEOUT_SECONDS = 600.0

# {real model path: its conversion started ahead}; at most one per Trainer run of this
# process, taken out by export (the Pusher) or by discard (the run's end).
_ahead: dict = {}
_ahead_lock = threading.Lock()


def _network_inputs(loaded):
    """The Keras network's input structure for inference (a spec, list or dict of specs,
    whatever the model file built)."""
    for function in loaded.__call__.concrete_functions:
        args, _ = function.structured_input_signature
        if len(args) >= 2 and args[1] is False:  # training=False
            return args[0]
    raise ValueError("the SavedModel has no Keras __call__ for inference (not a Keras model)")


def _class_names(model_path: str) -> list[str]:
    import tensorflow as tf

    with tf.io.gfile.GFile(os.path.join(model_path, "assets", LABEL_VOCABULARY_ASSET), "r") as f:
        return [line.rstrip("\n") for line in f]


def network_function(model_path: str):
    """(tf.function from the network's inputs to the serving outputs, its input specs)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(model_path)
    structure = _network_inputs(loaded)
    specs = tf.nest.flatten(structure)
    classification = PROBABILITIES in loaded.signatures[SERVING_SIGNATURE].structured_outputs
    # A Python list, made a constant inside the trace: a captured tensor would become
    # an extra input of the ONNX graph.
    class_names = _class_names(model_path) if classification else None

    @tf.function(input_signature=specs)
    def network(*features):
        output = loaded(tf.nest.pack_sequence_as(structure, list(features)), training=False)
        if not classification:
            return {PREDICTIONS: output}
        probabilities = tf.nn.softmax(output)
        class_ids = tf.argmax(probabilities, axis=1)
        return {PROBABILITIES: probabilities, CLASS_IDS: class_ids,
                CLASSES: tf.gather(tf.constant(class_names), class_ids)}

    return network, specs


def convert(model_path: str) -> bytes:
    """The ONNX model's bytes; raises on anything the converter refuses."""
    import tf2onnx

    network, specs = network_function(model_path)
    model, _ = tf2onnx.convert.from_function(network, input_signature=specs, opset=OPSET)
    contract = {"inputs": "the Keras network's inputs, after the transform (SavedModel signature "
                          "transform_features; the built-in model packs its outputs: trainer/model.py pack)",
                "input_names": [spec.name for spec in specs]}
    entry = model.metadata_props.add()
    entry.key, entry.value = "kubetfx_input_contract", json.dumps(contract)
    return model.SerializeToString()


class _Ahead(NamedTuple):
    answer: concurrent.futures.Future  # export's answer
    thread: threading.Thread


def start(model_path: str) -> None:
    """Starts `export(model_path)` in a background thread; a later `export` of the same path
    waits for it (at most AHEAD_TIMEOUT_SECONDS) instead of converting again."""
    key = os.path.realpath(model_path)
    answer = concurrent.futures.Future()

    def convert_ahead():
        try:
            answer.set_result(_export_now(model_path))
        except BaseException as err:  # noqa: BLE001 - _export_now catches Exception; anything else ends here
            answer.set_exception(err)

    thread = threading.Thread(target=convert_ahead, name="onnx-export-ahead", daemon=True)
    with _ahead_lock:
        if key in _ahead:
            return
        _ahead[key] = _Ahead(answer, thread)
    thread.start()


def export(model_path: str) -> tuple[dict, str]:
    """({ONNX_FILE: bytes}, "exported in N s") or ({}, "not exported: why"), never raising:
    a push goes on without its ONNX copy."""
    with _ahead_lock:
        ahead = _ahead.pop(os.path.realpath(model_path), None)
    if ahead is None:
        return _export_now(model_path)
    try:
        return ahead.answer.result(timeout=AHEAD_TIMEOUT_SECONDS)
    except concurrent.futures.TimeoutError:
        why = f"not exported: the conversion started ahead took over {AHEAD_TIMEOUT_SECONDS:.0f} s"
    except Exception as err:  # noqa: BLE001 - the push goes on without its ONNX copy
        why = f"not exported: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
    logging.warning("ONNX copy of %s %s", model_path, why)
    return {}, why


def discard(model_path: str, timeout: float = AHEAD_TIMEOUT_SECONDS) -> None:
    """Drops the conversion started ahead for `model_path` that no `export` took, once its
    thread has ended (at most `timeout`; a conversion stuck longer is left to end alone,
    logged): after the run that started it, it reads nothing and holds nothing."""
    with _ahead_lock:
        ahead = _ahead.pop(os.path.realpath(model_path), None)
    if ahead is None:
        return
    ahead.thread.join(timeout)
    if ahead.thread.is_alive():
        logging.warning("ONNX copy of %s: the conversion started ahead still runs after %.0f s; dropped",
                        model_path, timeout)


def _export_now(model_path: str) -> tuple[dict, str]:
    start = time.monotonic()
    try:
        content = convert(model_path)
    except Exception as err:  # noqa: BLE001 (any converter failure leaves the push as it was)
        why = f"not exported: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
        logging.warning("ONNX copy of %s %s", model_path, why)
        return {}, why
    return {ONNX_FILE: content}, f"exported in {time.monotonic() - start:.1f} s"
