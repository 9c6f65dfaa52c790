"""The built-in Trainer's sizing rules and its example count, on real TFRecord files."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from kubetfx.components.trainer import model


def test_batch_size_grows_with_the_data_within_bounds():
    assert model.batch_size_for(200) == 32
    assert model.batch_size_for(10_000) == 64
    assert model.batch_size_for(100_000) == 512
    assert model.batch_size_for(10_000_000) == 1024
    sizes = [model.batch_size_for(n) for n in (10, 1_000, 50_000, 500_000, 5_000_000)]
    assert sizes == sorted(sizes)


def test_learning_rate_follows_the_batch_and_is_capped():
    assert model.learning_rate_for(32) == 0.01
    assert model.learning_rate_for(128) == 0.02
    assert model.learning_rate_for(1024) == 0.03


def test_count_examples_reads_every_record_of_every_file(tmp_path):
    example = tf.train.Example().SerializeToString()
    for index, count in enumerate((3, 5)):
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(str(tmp_path / f"part-{index}.gz"), options) as writer:
            for _ in range(count):
                writer.write(example)
    assert model.count_examples(str(tmp_path / "part-*")) == 8
    assert model.count_examples([str(tmp_path / "part-0.gz")]) == 3


def _batches(rows: int, batch: int):
    features = {"x": np.arange(rows, dtype=np.float32), "y": np.ones(rows, np.float32)}
    return tf.data.Dataset.from_tensor_slices((features, np.arange(rows) % 3)).batch(batch)


def test_read_in_memory_keeps_every_example_in_order():
    features, labels = model.read_in_memory(_batches(10, 4), limit_bytes=10_000)
    assert features["x"].tolist() == list(range(10))
    assert labels.tolist() == [i % 3 for i in range(10)]


def test_read_in_memory_keeps_the_first_examples_only_when_asked():
    features, labels = model.read_in_memory(_batches(10, 4), limit_bytes=10_000, max_examples=5)
    assert features["x"].tolist() == [0, 1, 2, 3, 4] and len(labels) == 5


def test_read_in_memory_gives_up_past_its_bound():
    # 10 rows x (4 + 4 + 8 bytes) = 160 bytes: streamed, not held, under a 100-byte bound.
    assert model.read_in_memory(_batches(10, 4), limit_bytes=100) is None


def test_read_in_memory_streams_sparse_features():
    sparse = tf.data.Dataset.from_tensors(
        ({"x": tf.sparse.from_dense(tf.constant([[1.0], [0.0]]))}, tf.constant([0, 1])))
    assert model.read_in_memory(sparse, limit_bytes=10_000) is None


def _x_and_label_examples(uri):
    """TFX's data accessor and the schema for the Split-* files under uri (float x, int label)."""
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.components.trainer import fn_args_utils
    from tfx.components.util import tfxio_utils
    from tfx.types import standard_artifacts
    examples = standard_artifacts.Examples()
    examples.uri = str(uri)
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    accessor = fn_args_utils.DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
        record_batch_factory=None, data_view_decode_fn=None)
    schema = schema_pb2.Schema()
    for name, kind in (("x", schema_pb2.FLOAT), ("label", schema_pb2.INT)):
        feature = schema.feature.add(name=name, type=kind)
        feature.shape.dim.add(size=1)
        feature.presence.min_fraction = 1
    return accessor, schema


def test_the_in_memory_read_gives_every_example_of_every_file_in_its_order(tmp_path):
    """The Trainer reads without reader threads (reader_num_threads=None, for speed): the
    same examples as tfx_bsl's threaded default, each file's in its order (files are
    interleaved; ExampleGen writes one file per split)."""
    from types import SimpleNamespace

    from tfx_bsl.public import tfxio

    split = tmp_path / "Split-train"
    split.mkdir()
    row = 0
    for part, count in enumerate((700, 5, 300)):
        with tf.io.TFRecordWriter(str(split / f"part-{part}.gz"), tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
            for _ in range(count):
                example = tf.train.Example()
                example.features.feature["x"].float_list.value.append(row)
                example.features.feature["label"].int64_list.value.append(row % 3)
                writer.write(example.SerializeToString())
                row += 1
    accessor, schema = _x_and_label_examples(tmp_path)
    files = [str(split / "*")]

    def dense(raw):
        return {name: tf.reshape(tensor, [-1]) for name, tensor in raw.items()}

    ours = model.read_in_memory(model._dataset(SimpleNamespace(data_accessor=accessor), files, schema, dense,
                                               "label", 256, shuffle=False), limit_bytes=1 << 20)
    threaded = accessor.tf_dataset_factory(files, tfxio.TensorFlowDatasetOptions(batch_size=256, num_epochs=1, shuffle=False), schema)
    expected = np.concatenate([batch["x"].numpy().reshape(-1) for batch in threaded])
    values = ours[0]["x"].tolist()
    assert sorted(values) == sorted(expected.tolist()) == list(range(1005))
    for first, last in ((0, 700), (700, 705), (705, 1005)):  # each file's rows in order
        assert [v for v in values if first <= v < last] == list(range(first, last))
    assert ours[1].tolist() == [int(x) % 3 for x in values]


def _transform_output(folder, numeric: int, vocabularies: dict, classes=("a", "b")):
    """A real TFTransformOutput directory (transformed schema and vocabulary files) as
    Transform writes it for `numeric` float columns, one id column per vocabulary and a
    label vocabulary: what the Trainer reads to build its model."""
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from kubetfx.components.transform import preprocessing

    spec = {f"x{i:04d}": tf.io.FixedLenFeature([], tf.float32) for i in range(numeric)}
    spec.update({name: tf.io.FixedLenFeature([], tf.int64) for name in vocabularies})
    spec["label"] = tf.io.FixedLenFeature([], tf.int64)
    output = tft.TFTransformOutput(str(folder))
    metadata_io.write_metadata(dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec)),
                               output._transformed_metadata_dir)
    assets = folder / output.TRANSFORM_FN_DIR / "assets"
    assets.mkdir(parents=True)
    for name, values in {**{preprocessing.vocabulary_name(n): v for n, v in vocabularies.items()},
                         preprocessing.LABEL_VOCABULARY: classes}.items():
        (assets / name).write_text("".join(f"{v}\n" for v in values))
    return output


def _traced_ops(keras_model) -> int:
    """Operations in the graph of one call of the model on a batch of its inputs."""
    specs = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), keras_model.input)
    return len(tf.function(keras_model).get_concrete_function(specs).graph.get_operations())


def test_the_model_graph_does_not_grow_with_the_number_of_columns(tmp_path):
    """Issue 23: a Keras Input (and a concatenation edge) per column made the Trainer of a
    1,000-column, 500-row table take minutes building, tracing and saving its graph. The
    model takes the features packed into two tensors: the same layers and the same traced
    operations at 30 and 1,000 columns, only the first layer's weights grow."""
    built = {}
    for numeric in (30, 1_000):
        out = _transform_output(tmp_path / str(numeric), numeric, {"region": ["north", "south"]})
        keras_model = model._build_model(out, "label", "classification", 0.01)
        built[numeric] = (len(keras_model.layers), _traced_ops(keras_model), keras_model.count_params())
    (layers_30, ops_30, params_30), (layers_1000, ops_1000, params_1000) = built[30], built[1_000]
    assert layers_1000 == layers_30 and ops_1000 == ops_30, built
    assert params_1000 - params_30 == 970 * model.DEFAULT_HIDDEN[0]  # the extra columns' first-layer weights


def test_packed_vocabulary_ids_are_each_columns_one_hot_side_by_side(tmp_path):
    """One multi-hot over offset ids equals the per-column one-hot encodings concatenated;
    an id outside its column's range falls in that column's OOV bucket, not a neighbour's."""
    out = _transform_output(tmp_path, 2, {"colour": ["red", "blue"], "size": ["s", "m", "l"]})
    layout = model.feature_layout(out, "label")
    assert layout.numeric == ["x0000", "x0001"] and layout.categorical == ["colour", "size"]
    assert layout.depths == [3, 4]  # + one OOV bucket each
    features = {"x0000": tf.constant([0.5, -1.0]), "x0001": tf.constant([[2.0], [3.0]]),
                "colour": tf.constant([1, -1], tf.int64), "size": tf.constant([[3], [0]], tf.int64)}
    packed = model.pack(features, layout)
    assert packed[model.NUMERIC].numpy().tolist() == [[0.5, 2.0], [-1.0, 3.0]]
    keras_model = model._build_model(out, "label", "classification", 0.01)
    encoding = next(layer for layer in keras_model.layers if "category_encoding" in layer.name)
    expected = [[0, 1, 0] + [0, 0, 0, 1],  # colour 1, size 3 (its OOV bucket)
                [0, 0, 1] + [1, 0, 0, 0]]  # colour -1: colour's OOV bucket; size 0
    assert encoding(packed[model.CATEGORIES]).numpy().tolist() == expected


def test_the_training_step_is_traced_once(tmp_path):
    """Adam's slots are built with the model: a first trace that creates variables makes
    TF trace the step again (it was traced twice, the costliest trace of a small run)."""
    out = _transform_output(tmp_path, 3, {"region": ["north", "south"]})
    keras_model = model._build_model(out, "label", "classification", 0.01)
    rng = np.random.default_rng(0)
    x = {model.NUMERIC: rng.normal(size=(100, 3)).astype(np.float32),
         model.CATEGORIES: rng.integers(0, 3, size=(100, 1))}
    keras_model.fit(x, rng.integers(0, 2, size=100), batch_size=32, epochs=2, verbose=0)
    assert keras_model.train_function.experimental_get_tracing_count() == 1


def test_the_release_collects_what_training_made_and_walks_nothing_older():
    """run_fn sets the process's older objects aside from the collector (gc.freeze), so
    release_memory's full collection walks only the Trainer's; its cycles are still freed,
    and the older objects are handed back to the collector afterwards."""
    import gc
    import weakref

    class Node:
        pass

    with model.collecting_only_new_objects():
        assert gc.get_freeze_count() > 100_000  # TensorFlow's modules, set aside
        node = Node()
        node.self = node  # a reference cycle, as Keras models are
        made = weakref.ref(node)
        del node
        model.release_memory()
        assert made() is None
    assert gc.get_freeze_count() == 0


def test_the_splits_datasets_trace_the_transform_once(tmp_path):
    """Each dataset's map traces its own function; the transform graph inside (the costly
    part of the Trainer's read on a small table) is traced once for both splits."""
    from types import SimpleNamespace


    for split, rows in (("train", 30), ("eval", 7)):
        (tmp_path / f"Split-{split}").mkdir()
        with tf.io.TFRecordWriter(str(tmp_path / f"Split-{split}" / "part.gz"),
                                  tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
            for row in range(rows):
                example = tf.train.Example()
                example.features.feature["x"].float_list.value.append(row)
                example.features.feature["label"].int64_list.value.append(row % 2)
                writer.write(example.SerializeToString())
    accessor, schema = _x_and_label_examples(tmp_path)
    traces = []

    def dense(raw):  # stands in for TFT's layer: called once per trace
        traces.append(1)
        return {name: tf.reshape(tensor, [-1]) for name, tensor in raw.items()}

    transform = model._transform_fn(dense, "label", 2, None)
    read = {split: model.read_in_memory(model._dataset(
        SimpleNamespace(data_accessor=accessor), [str(tmp_path / f"Split-{split}" / "*")], schema, dense,
        "label", 16, shuffle=False, known_classes=2, transform=transform), limit_bytes=1 << 20)
        for split in ("train", "eval")}
    assert [len(read[s][1]) for s in ("train", "eval")] == [30, 7]
    assert len(traces) == 1
