"""A model that does not convert to ONNX is pushed all the same, without the ONNX file, and
the reason is recorded on the PushedModel. (That a real pushed model converts and predicts
as the SavedModel does: tests/test_local_pipeline.py
test_the_pushed_version_has_an_onnx_copy_that_predicts_as_the_saved_model.)"""
from __future__ import annotations

import json
import os

from tfx.types import standard_artifacts

from kubetfx.components.pusher import executor, onnx_export
from testing_models import model_files, save_scaler


def _blessed(cls, path):
    artifact = cls()
    artifact.uri = str(path)
    artifact.set_int_custom_property("blessed", 1)
    return artifact


def test_a_model_that_does_not_convert_is_pushed_without_onnx_and_says_why(tmp_path):
    model = model_files(tmp_path / "model", b"not a graph")
    # The schema and statistics inputs of kubetfx's graph (TFX's own, without them, gets
    # a version of the model's files only: tests/tfx_contract/test_pusher_contract.py).
    schema, statistics = standard_artifacts.Schema(), standard_artifacts.ExampleStatistics()
    schema.uri, statistics.uri = str(tmp_path / "schema"), str(tmp_path / "statistics")
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "schema.pbtxt").write_bytes(b"feature {}")
    (tmp_path / "statistics" / "Split-train").mkdir(parents=True)
    (tmp_path / "statistics" / "Split-train" / "FeatureStats.pb").write_bytes(b"")
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    inputs = {"model": [model], "schema": [schema], "statistics": [statistics],
              "model_blessing": [_blessed(standard_artifacts.ModelBlessing, tmp_path / "b")],
              "infra_blessing": [_blessed(standard_artifacts.InfraBlessing, tmp_path / "i")]}
    destination = tmp_path / "serving"
    properties = {"push_destination": json.dumps({"filesystem": {"base_directory": str(destination)}}),
                  "custom_config": "null"}
    executor.AtomicPusherExecutor().Do(inputs, {"pushed_model": [pushed]}, properties)
    (version,) = os.listdir(destination)
    assert (destination / version / "saved_model.pb").read_bytes() == b"not a graph"
    assert (destination / version / "assets.extra" / "kubetfx" / "schema.pbtxt").exists()
    assert not (destination / version / onnx_export.ONNX_FILE).exists()
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property(onnx_export.OUTCOME_PROPERTY).startswith("not exported: ")


def test_a_savedmodel_without_a_keras_network_is_refused_in_one_line(tmp_path):
    path = save_scaler(tmp_path / "scaler", 2.0)  # a tf.Module: signatures, no Keras __call__
    files, outcome = onnx_export.export(str(path))
    assert files == {}
    assert outcome.startswith("not exported: ") and "\n" not in outcome


def _keras_regressor(path):
    """A tf_keras network saved as the Trainer saves one: Keras' SavedModel with a
    serving_default signature answering `predictions` (a regression: no label vocabulary)."""
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input(shape=(2,), name="numeric", dtype=tf.float32)
    model = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="ones")(inputs))

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="numeric")])
    def serve(numeric):
        return {onnx_export.PREDICTIONS: model(numeric, training=False)}

    model.save(str(path), save_format="tf", signatures={onnx_export.SERVING_SIGNATURE: serve})
    return path


def test_a_copy_started_ahead_is_the_one_the_push_takes(tmp_path):
    import shutil
    import threading

    import onnx

    path = str(_keras_regressor(tmp_path / "model"))
    onnx_export.start(path)
    onnx_export.start(path)  # a second start of the same model converts once
    ahead = [t for t in threading.enumerate() if t.name == "onnx-export-ahead"]
    assert len(ahead) == 1
    ahead[0].join(timeout=300)
    shutil.rmtree(path)  # from here only the conversion started ahead can answer
    files, outcome = onnx_export.export(path)
    assert outcome.startswith("exported in "), outcome
    graph = onnx.load_from_string(files[onnx_export.ONNX_FILE]).graph
    assert [o.name for o in graph.output] == [onnx_export.PREDICTIONS]
    # Taken once: the next export of the path converts on the spot (the files are gone).
    again, outcome = onnx_export.export(path)
    assert again == {} and outcome.startswith("not exported: ")


def test_a_copy_started_ahead_that_no_push_takes_is_dropped_once_its_thread_ends(tmp_path):
    """What a run does at its end for a model it did not push (pipelines/run/local_runner.py)."""
    import threading

    path = str(_keras_regressor(tmp_path / "model"))
    onnx_export.start(path)
    onnx_export.discard(path)
    assert os.path.realpath(path) not in onnx_export._ahead
    assert not [t for t in threading.enumerate() if t.name == "onnx-export-ahead"]
    onnx_export.discard(path)  # nothing left to drop
