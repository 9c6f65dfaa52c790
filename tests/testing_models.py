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


# The Evaluator's synthetic examples and models (components/evaluator/*_test.py): tf.Examples
# with a float "x", a float "mass" and a text "species", and tf.Modules with the two
# signatures kubetfx's Trainer exports, whose accuracy / error is known by construction.
PENGUIN_CLASSES = (b"Adelie", b"Chinstrap", b"Gentoo")


def write_gate_examples(root: Path, rows: dict):
    """A TFX Examples artifact at root/examples: {split: [(x, mass, species or None)]}, one
    GZIP file per split; a species None is an empty label cell (no species feature)."""
    import os

    import tensorflow as tf
    from tfx.types import artifact_utils, standard_artifacts

    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(list(rows))
    for split, split_rows in rows.items():
        os.makedirs(os.path.join(examples.uri, f"Split-{split}"))
        path = os.path.join(examples.uri, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
            for x, mass, species in split_rows:
                features = {
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x])),
                    "mass": tf.train.Feature(float_list=tf.train.FloatList(value=[mass])),
                }
                if species is not None:
                    features["species"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[species]))
                writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return examples


def save_gate_model(path: Path, task: str, quality: float = 1.0, mass_weight: float = 1.0, offset: float = 0.0):
    """A TFX Model artifact at `path`. classification: right exactly on examples with
    x < quality (the species' next class elsewhere); regression: predicts
    mass_weight * mass + offset. transform_features gives species as its class id, or
    -1 (preprocessing.MISSING_LABEL) where the example has none."""
    import os

    import tensorflow as tf
    from tfx.types import standard_artifacts

    spec = {"x": tf.io.FixedLenFeature([], tf.float32), "mass": tf.io.FixedLenFeature([], tf.float32),
            "species": tf.io.FixedLenFeature([], tf.string, default_value="")}

    def transform(examples):
        raw = tf.io.parse_example(examples, spec)
        matches = tf.cast(tf.equal(raw["species"][:, None], tf.constant(PENGUIN_CLASSES)[None, :]), tf.int64)
        ids = tf.where(tf.reduce_any(matches > 0, axis=1), tf.argmax(matches, axis=1), tf.constant(-1, tf.int64))
        return {"species": ids, "x": raw["x"], "mass": raw["mass"]}

    module = tf.Module()
    signature = [tf.TensorSpec([None], tf.string, name="examples")]

    @tf.function(input_signature=signature)
    def serve(examples):
        features = transform(examples)
        if task == "regression":
            return {"predictions": mass_weight * features["mass"][:, None] + offset}
        wrong = tf.cast(features["x"] >= quality, tf.int64)
        return {"probabilities": tf.one_hot((tf.maximum(features["species"], 0) + wrong) % 3, 3)}

    module.serve = serve
    module.transform_features = tf.function(transform, input_signature=signature)
    model = standard_artifacts.Model()
    model.uri = str(path)
    tf.saved_model.save(module, os.path.join(model.uri, "Format-Serving"),
                        signatures={"serving_default": serve, "transform_features": module.transform_features})
    return model
