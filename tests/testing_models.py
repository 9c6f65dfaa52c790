"""Real SavedModels and tf.Examples for the model server and InfraValidator tests
(imported by the tests of components/infra_validator/, components/serving/, pipelines/serving/ and pipelines/monitor/; nothing here runs in a pipeline)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest


def example(value: float) -> bytes:
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    ex.features.feature["x"].float_list.value.append(value)
    return ex.SerializeToString()


def serialized_example(instance: dict) -> bytes:
    """A tf.Example of a feature dict as a client sends it: str -> bytes, int -> int64,
    anything else float (tests/test_hard_tables.py, tests/bench/serve.py)."""
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    for key, value in instance.items():
        feature = ex.features.feature[key]
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        elif isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.float_list.value.append(value)
    return ex.SerializeToString()


def model_files(uri: Path, graph: bytes):
    """A TFX Model artifact at `uri` whose Format-Serving holds a SavedModel's files (the
    graph bytes given, so it may not load): what the Pusher copies and checks."""
    from tfx.types import standard_artifacts

    model = standard_artifacts.Model()
    model.uri = str(uri)
    serving = uri / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(graph)
    (serving / "variables" / "variables.index").write_bytes(b"index")
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")
    return model


def save_scaler(path: Path, factor: float, broken_on_examples: bool = False) -> Path:
    """A SavedModel whose serving_default parses serialized tf.Examples with a float "x" and
    an int "n" and answers x * factor (so the answer says which version computed it) and
    n + 1; a second signature "add" takes two float tensors. broken_on_examples: it parses
    a feature real examples lack, so loading works but every prediction fails."""
    import tensorflow as tf

    key = "missing_feature" if broken_on_examples else "x"
    spec = {key: tf.io.FixedLenFeature([1], tf.float32), "n": tf.io.FixedLenFeature([1], tf.int64, default_value=[0])}

    class Scaler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            parsed = tf.io.parse_example(serialized, spec)
            return {"scaled": parsed[key] * factor, "n_plus_one": parsed["n"] + 1}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="a"),
                                      tf.TensorSpec([None], tf.float32, name="b")])
        def add(self, a, b):
            return {"sum": a + b}

    module = Scaler()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve, "add": module.add})
    return path


def wait_for(condition, timeout: float = 120, what: str = "condition"):
    """Polls until condition() is truthy; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return result
