"""A kubetfx module file to start from: `kubetfx init-module my_module.py` writes this file,
`kubetfx run --data my.csv --label COLUMN --module-file my_module.py` trains it as it is, on
any table (the label and the task come from the run, in `custom_config`). Edit it freely;
`kubetfx run` checks it before any stage starts (syntax, imports, the two functions below).

TFX calls two functions (TFX's module-file contract):
- `preprocessing_fn(inputs, custom_config)`: raw features -> transformed ones, inside
  Transform (a TF graph: it runs again, unchanged, inside the served model);
- `run_fn(fn_args)`: trains on the transformed examples (`fn_args.train_files`) and saves
  the model to `fn_args.serving_model_dir`.

What kubetfx's gates (Evaluator, InfraValidator, the model server) call on the saved model:
a `serving_default` signature taking serialized raw tf.Examples (`examples`) and returning
`probabilities` (classification; class ids in the order of the "label" vocabulary) or
`predictions` (regression), and `transform_features` (raw examples -> transformed features,
the label included).
"""
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx_bsl.public import tfxio

LABEL_VOCABULARY = "label"  # the Evaluator reads class names from this vocabulary
BATCH_SIZE = 32
# A row without a label (an empty cell) is no example: its class id is MISSING_LABEL (a
# regression target NaN); training leaves it out, and so does kubetfx's Evaluator. Without
# this the empty cell became a class of its own ("" or "0") that the model learned.
MISSING_LABEL = -1


def _dense(x, default):
    """[batch] values of an optional column (a SparseTensor when values may be missing)."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
                               default_value=default)
    return tf.reshape(x, [-1])


def _label(x, task):
    """Class ids in the vocabulary of the present labels (classification; a class only the
    eval split has gets the id after the last), or float targets; MISSING_LABEL / NaN where
    the row has no label."""
    present = tf.ones_like(_dense(x, tf.cast(0, x.dtype)), tf.bool)
    if isinstance(x, tf.SparseTensor):
        present = _dense(tf.SparseTensor(x.indices, tf.ones_like(x.values, tf.bool), x.dense_shape), False)
    if task != "classification":
        return tf.where(present, tf.cast(_dense(x, tf.cast(0, x.dtype)), tf.float32), float("nan"))
    text = _dense(x, "") if x.dtype == tf.string else tf.strings.as_string(_dense(x, tf.cast(0, x.dtype)))
    vocabulary = tft.vocabulary(tf.boolean_mask(text, present), vocab_filename=LABEL_VOCABULARY)
    ids = tft.apply_vocabulary(text, vocabulary, num_oov_buckets=1)
    return tf.where(present, ids, tf.constant(MISSING_LABEL, ids.dtype))


def preprocessing_fn(inputs, custom_config):
    label, task = custom_config["label"], custom_config["task"]
    outputs = {}
    for name, x in inputs.items():
        if x.dtype == tf.string:
            values = _dense(x, "")
        else:  # missing numbers become 0 before scaling: edit to impute otherwise
            values = tf.cast(_dense(x, tf.cast(0, x.dtype)), tf.float32)
        if name == label:
            outputs[name] = _label(x, task)
        elif x.dtype == tf.string:  # a category: its id in a vocabulary, one bucket for unseen values
            outputs[name] = tft.compute_and_apply_vocabulary(values, num_oov_buckets=1)
        else:
            outputs[name] = tft.scale_to_z_score(values)
    return outputs


def _model(tf_transform_output, label, task):
    inputs, encoded = [], []
    for name, spec in sorted(tf_transform_output.transformed_feature_spec().items()):
        if name == label:
            continue
        layer = keras.layers.Input(shape=(1,), name=name, dtype=spec.dtype)
        inputs.append(layer)
        if spec.dtype == tf.int64:  # a vocabulary id: one-hot over the vocabulary and its OOV bucket
            depth = tf_transform_output.num_buckets_for_transformed_feature(name)
            encoded.append(keras.layers.CategoryEncoding(num_tokens=depth, output_mode="one_hot")(layer))
        else:
            encoded.append(layer)
    x = keras.layers.concatenate(encoded) if len(encoded) > 1 else encoded[0]
    x = keras.layers.Dense(32, activation="relu")(x)
    if task == "classification":  # no output for the OOV id: a class only the eval split has
        classes = tf_transform_output.vocabulary_size_by_name(LABEL_VOCABULARY)
        model = keras.Model(inputs, keras.layers.Dense(classes)(x))
        model.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["sparse_categorical_accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        model = keras.Model(inputs, keras.layers.Dense(1)(x))
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def run_fn(fn_args):
    label, task = fn_args.custom_config["label"], fn_args.custom_config["task"]
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    classes = tf_transform_output.vocabulary_size_by_name(LABEL_VOCABULARY) if task == "classification" else 0

    def labelled(features, label_value):
        """Rows with a label the model has an output for (not MISSING_LABEL / NaN, not a
        class only the eval split has)."""
        if task == "classification":
            return tf.reduce_all((label_value >= 0) & (label_value < classes))
        return tf.reduce_all(tf.math.is_finite(label_value))

    def dataset(files):
        return fn_args.data_accessor.tf_dataset_factory(
            files, tfxio.TensorFlowDatasetOptions(batch_size=BATCH_SIZE, label_key=label),
            tf_transform_output.transformed_metadata.schema).unbatch().filter(labelled).batch(BATCH_SIZE).repeat()

    model = _model(tf_transform_output, label, task)
    model.fit(dataset(fn_args.train_files), steps_per_epoch=fn_args.train_steps or 300,
              validation_data=dataset(fn_args.eval_files), validation_steps=fn_args.eval_steps or 50,
              verbose=2)

    model.tft_layer = tf_transform_output.transform_features_layer()  # saved with the model
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != label}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        features = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        features.pop(label, None)
        output = model(features)
        if task == "classification":
            return {"probabilities": tf.nn.softmax(output)}
        return {"predictions": output}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    model.save(fn_args.serving_model_dir, save_format="tf",
               signatures={"serving_default": serve, "transform_features": transform_features})
