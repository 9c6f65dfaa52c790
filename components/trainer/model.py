"""Default schema-driven model: a small dense network over every transformed feature.

The exported SavedModel has two signatures:
- serving_default: serialized tf.Examples of raw features -> predictions (the transform
  graph runs inside, so servers need nothing else);
- transform_features: serialized raw examples -> transformed features, used by the
  Evaluator to read class ids of string labels.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tft's Keras layer is Keras 2 (tf_keras)

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from kubetfx.components import autograph  # noqa: E402
from kubetfx.components.transform import preprocessing  # noqa: E402

autograph.skip_libraries()

PROBABILITIES = "probabilities"
PREDICTIONS = "predictions"


def prediction_key(task: str) -> str:
    return PROBABILITIES if task == "classification" else PREDICTIONS


def _dataset(fn_args, files, raw_schema, transform_layer, label, batch_size):
    """(transformed features, label) batches from raw examples: Transform wrote none out,
    the graph is applied here (as it is at serving), on the few batches training reads."""
    def transform(raw):
        features = transform_layer(raw)
        return features, features.pop(label)

    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size),
        raw_schema,
    ).map(transform, num_parallel_calls=tf.data.AUTOTUNE).repeat()


def _build_model(tf_transform_output, label, task):
    inputs, encoded = [], []
    for name, spec in sorted(tf_transform_output.transformed_feature_spec().items()):
        if name == label:
            continue
        layer = keras.layers.Input(shape=(1,), name=name, dtype=spec.dtype)
        inputs.append(layer)
        if spec.dtype == tf.int64:  # a vocabulary id: one-hot over the vocabulary + OOV
            depth = tf_transform_output.vocabulary_size_by_name(
                preprocessing.vocabulary_name(name)) + preprocessing.OOV_BUCKETS
            encoded.append(keras.layers.CategoryEncoding(num_tokens=depth, output_mode="one_hot")(layer))
        else:
            encoded.append(layer)
    x = keras.layers.concatenate(encoded) if len(encoded) > 1 else encoded[0]
    for width in (32, 16):
        x = keras.layers.Dense(width, activation="relu")(x)
    if task == "classification":
        classes = tf_transform_output.vocabulary_size_by_name(preprocessing.LABEL_VOCABULARY)
        outputs = keras.layers.Dense(classes)(x)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy()]
    else:
        outputs = keras.layers.Dense(1)(x)
        loss, metrics = keras.losses.MeanSquaredError(), [keras.metrics.MeanAbsoluteError()]
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=metrics)
    return model


def _signatures(model, tf_transform_output, label, task):
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != label}
    class_names = None
    if task == "classification":
        class_names = tf.constant(tf_transform_output.vocabulary_by_name(preprocessing.LABEL_VOCABULARY))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        features = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        features.pop(label, None)
        output = model(features)
        if task == "regression":
            return {PREDICTIONS: output}
        probabilities = tf.nn.softmax(output)
        class_ids = tf.argmax(probabilities, axis=1)
        return {PROBABILITIES: probabilities, "class_ids": class_ids,
                "classes": tf.gather(class_names, class_ids)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    return {"serving_default": serve, "transform_features": transform_features}


def run_fn(fn_args):
    config = fn_args.custom_config or {}
    label, task = config["label"], config["task"]
    batch_size = int(config.get("batch_size", 32))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    model = _build_model(tf_transform_output, label, task)
    # One transform layer (one load of the transform graph) for training, validation and the
    # exported signatures; tracked by the model, so it is saved with it.
    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_schema = tf_transform_output.raw_metadata.schema
    train = _dataset(fn_args, fn_args.train_files, raw_schema, model.tft_layer, label, batch_size)
    evaluation = _dataset(fn_args, fn_args.eval_files, raw_schema, model.tft_layer, label, batch_size)
    model.fit(train, steps_per_epoch=fn_args.train_steps, validation_data=evaluation,
              validation_steps=fn_args.eval_steps, verbose=2)
    model.save(fn_args.serving_model_dir, save_format="tf",
               signatures=_signatures(model, tf_transform_output, label, task))
