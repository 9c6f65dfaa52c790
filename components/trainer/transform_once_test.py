"""Issue 23: the built-in Trainer applies a TF1 transform graph as it was loaded, with no
prune and no copy (it pruned and copied it once per traced caller, then once), on a real
TFT transform graph (force_tf_compat_v1, as the built-in Transform writes it) and real
tf.Example files of a small wide table."""
from __future__ import annotations

import collections
import gc
import os
import traceback

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow.python.eager import wrap_function
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from kubetfx.components.trainer import model
from kubetfx.components.transform import preprocessing

COLUMNS = 24
CONFIG = {"label": "label", "task": "classification", "max_epochs": 2}


def _spec():
    spec = {f"x{i:02d}": tf.io.VarLenFeature(tf.float32) for i in range(COLUMNS)}
    spec["region"] = tf.io.VarLenFeature(tf.string)
    spec["label"] = tf.io.FixedLenFeature([], tf.string)  # dense: serving requests lack it
    return spec


def _rows(count: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(count):
        values = rng.normal(0, 1, COLUMNS)
        row = {f"x{i:02d}": [float(v)] for i, v in enumerate(values)}
        row["region"] = [["north", "south", "east"][r % 3]]
        row["label"] = "high" if values[0] > 0 else "low"
        rows.append(row)
    return rows


def _example(row: dict, label: bool = True) -> bytes:
    feature = {k: tf.train.Feature(float_list=tf.train.FloatList(value=v)) for k, v in row.items() if k[0] == "x"}
    feature["region"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[s.encode() for s in row["region"]]))
    if label:
        feature["label"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["label"].encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Trains the built-in model on a transform graph and examples written here, counting
    every WrappedFunction.prune by the function pruned; returns (counts, serving dir, rows)."""
    from tfx.components.trainer import fn_args_utils
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    root = tmp_path_factory.mktemp("wide_trainer")
    rows = {"train": _rows(96, 1), "eval": _rows(48, 2)}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(_spec()))
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(root / "tmp"), force_tf_compat_v1=True):
        transform_fn = ((pipeline | beam.Create([{**r, "label": r["label"].encode()} for r in rows["train"]]),
                         metadata) | tft_beam.AnalyzeDataset(lambda inputs: preprocessing.preprocessing_fn(inputs, CONFIG)))
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    metadata_io.write_metadata(metadata, str(root / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    for split, split_rows in rows.items():
        os.makedirs(root / "examples" / f"Split-{split}")
        with tf.io.TFRecordWriter(str(root / "examples" / f"Split-{split}" / "data.gz"),
                                  tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
            for row in split_rows:
                writer.write(_example(row))
    io_utils.write_pbtxt_file(str(root / "schema" / "schema.pbtxt"), metadata.schema)

    examples = standard_artifacts.Examples()
    examples.uri = str(root / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    graph, schema = standard_artifacts.TransformGraph(), standard_artifacts.Schema()
    graph.uri, schema.uri = str(root / "transform"), str(root / "schema")
    fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "transform_graph": [graph], "schema": [schema]},
        {"train_args": "{}", "eval_args": "{}"})
    fn_args.transform_output = fn_args.transform_graph_path
    fn_args.serving_model_dir, fn_args.model_run_dir = str(root / "serving"), str(root / "run")
    fn_args.custom_config = CONFIG

    counts = collections.Counter()
    original = wrap_function.WrappedFunction.prune

    def counted(self, *args, **kwargs):
        # Who asked: TFT's apply of a TF1 graph (once per traced caller before), or the
        # SavedModel load (its signatures and initializer, not the Trainer's doing).
        callers = {frame.name for frame in traceback.extract_stack(limit=6)}
        counts["apply" if "_apply_v1_transform_model_in_v2" in callers else "other"] += 1
        return original(self, *args, **kwargs)

    wrap_function.WrappedFunction.prune = counted
    models_before = _keras_models()
    try:
        model.run_fn(fn_args)
    finally:
        wrap_function.WrappedFunction.prune = original
    counts["keras models left"] = _keras_models() - models_before
    return counts, root / "serving", rows


def _keras_models() -> int:
    """Keras models alive in this process (the gc tracks every one; none is collected here)."""
    import tf_keras
    return sum(isinstance(o, tf_keras.Model) for o in gc.get_objects())


@pytest.mark.slow  # a TFT Beam analysis and a Keras training
def test_the_trainer_applies_the_transform_graph_without_pruning_it(trained):
    """The train and eval reads, both signatures and Keras's save each pruned (and copied)
    the whole transform graph again: 8-12 CPU s each on a 1,000-column table's graph; then
    once (about 17 CPU s, and a second copy of the graph held through the read). Every
    caller feeds every input, so none needs a prune."""
    counts, serving, _ = trained
    assert counts["apply"] == 0, counts


@pytest.mark.slow
def test_the_saved_model_holds_the_transform_graph_once(trained):
    """Each prune was another copy of the graph in saved_model.pb, loaded again by the
    Evaluator and the model server: five copies, then two (the loaded signature TFT's layer
    keeps, tracked for saving, and the pruned copy every caller applied); now every caller
    calls the loaded one."""
    _, serving, _ = trained
    saved = saved_model_pb2.SavedModel.FromString((serving / "saved_model.pb").read_bytes())
    library = saved.meta_graphs[0].graph_def.library.function
    copies = {f.signature.name: len(f.node_def) for f in library if "pruned" in f.signature.name}
    graph_size = max(copies.values())  # the other pruned function is the tables' initializer
    assert sum(size == graph_size for size in copies.values()) == 1, copies


@pytest.mark.slow
def test_the_trainer_leaves_no_model_behind(trained):
    """The Trainer runs in the run's process: what it held (the model and TFT's layer, the
    data read into memory, about 1 GB at 1,000 columns) stayed there, in reference cycles,
    while the InfraValidator's model server started beside it (the run's peak memory)."""
    counts, _, _ = trained
    assert counts["keras models left"] == 0, counts


@pytest.mark.slow
def test_the_serving_signature_takes_examples_without_the_label(trained):
    _, serving, rows = trained
    loaded = tf.saved_model.load(str(serving))
    requests = tf.constant([_example(r, label=False) for r in rows["eval"]])
    out = loaded.signatures["serving_default"](examples=requests)
    assert out["probabilities"].shape[0] == len(rows["eval"])
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert set(out["classes"].numpy().tolist()) <= {b"high", b"low"}
    # The same predictions from the examples with their labels: the label does not reach the model.
    labelled = loaded.signatures["serving_default"](examples=tf.constant([_example(r) for r in rows["eval"]]))
    np.testing.assert_allclose(labelled["probabilities"].numpy(), out["probabilities"].numpy(), rtol=1e-6)
    features = loaded.signatures["transform_features"](examples=tf.constant([_example(r) for r in rows["eval"]]))
    assert sorted(features) == sorted([f"x{i:02d}" for i in range(COLUMNS)] + ["region", "label"])
