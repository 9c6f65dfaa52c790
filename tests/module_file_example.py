"""A user's own TFX module file for the penguins data, written the classic TFX way
(explicit features, a run_fn reading materialized transformed examples), meeting the
contract the kubetfx gates call (see components/README.md): `serving_default` returns
`probabilities` from serialized raw examples, `transform_features` returns the transformed
features. Run end to end by test_module_file.py with `kubetfx run --module-file`."""
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx_bsl.public import tfxio

LABEL = "species"
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _filled(x):
    """Dense [batch] floats from an optional (sparse) column; missing values become 0."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), [x.dense_shape[0], 1]))
    return tf.reshape(tf.cast(x, tf.float32), [-1])


def preprocessing_fn(inputs):
    outputs = {name: tft.scale_to_z_score(_filled(inputs[name])) for name in NUMERIC}
    label = inputs[LABEL]
    if isinstance(label, tf.SparseTensor):
        label = tf.sparse.to_dense(tf.SparseTensor(label.indices, label.values, [label.dense_shape[0], 1]),
                                   default_value="")
    outputs[LABEL] = tft.compute_and_apply_vocabulary(tf.reshape(label, [-1]), vocab_filename="species")
    return outputs


def run_fn(fn_args):
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

    def dataset(files):
        return fn_args.data_accessor.tf_dataset_factory(
            files, tfxio.TensorFlowDatasetOptions(batch_size=32, label_key=LABEL),
            tf_transform_output.transformed_metadata.schema).repeat()

    inputs = [keras.layers.Input(shape=(1,), name=name) for name in NUMERIC]
    x = keras.layers.Dense(16, activation="relu")(keras.layers.concatenate(inputs))
    classes = tf_transform_output.vocabulary_size_by_name("species")
    model = keras.Model(inputs, keras.layers.Dense(classes)(x))
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(dataset(fn_args.train_files), steps_per_epoch=fn_args.train_steps,
              validation_data=dataset(fn_args.eval_files), validation_steps=fn_args.eval_steps, verbose=0)

    model.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != LABEL}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        features = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        return {"probabilities": tf.nn.softmax(model({name: features[name] for name in NUMERIC}))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    model.save(fn_args.serving_model_dir, save_format="tf",
               signatures={"serving_default": serve, "transform_features": transform_features})
