"""Default schema-driven model: a small dense network over every transformed feature.

It trains on the whole training split: epochs over the data until the eval split's loss
stops improving (early stopping, best weights kept), within an epoch and wall-time budget.
Batch size and learning rate follow the number of training examples. What it did is written
beside the model run (`training.json`: examples, epochs, why it stopped, where the data was
held) for the run summary.

Reading a split costs far more than a step of this small network (GZIP, tf.Example parsing
and the transform graph, per example), so the transformed split is read once and kept in
memory when it fits IN_MEMORY_BYTES; Keras then shuffles it fully every epoch. A split
that does not fit is streamed from the records every epoch instead, counted first in one
pass.

The network takes two inputs whatever the width: every float feature stacked in one
matrix, every vocabulary id in another (`pack`); a Keras input per column made a
1,000-column table's Trainer minutes of graph building and saving (issue 23).

The exported SavedModel has two signatures:
- serving_default: serialized tf.Examples of raw features -> predictions (the transform
  graph runs inside, so servers need nothing else);
- transform_features: serialized raw examples -> transformed features, used by the
  Evaluator to read class ids of string labels.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tft's Keras layer is Keras 2 (tf_keras)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from kubetfx.components import autograph  # noqa: E402
from kubetfx.components.trainer import transform_once  # noqa: E402
from kubetfx.components.transform import preprocessing  # noqa: E402

autograph.skip_libraries()

PROBABILITIES = "probabilities"
TRAINING_RECORD = "training.json"
# Early stopping looks at this many eval examples per epoch at most (the first ones, the
# same each epoch): a stable signal without a full pass over a large eval split.
MAX_VALIDATION_EXAMPLES = 50_000
SEED = 0  # the same data gives the same model, run after run
PREDICTIONS = "predictions"
_LABEL_KEY = object()  # the label's place among read_in_memory's columns (no feature name)


def prediction_key(task: str) -> str:
    return PROBABILITIES if task == "classification" else PREDICTIONS


# A transformed split is kept in memory up to this size: a quarter of the 2 GB a run may
# take (issue 15), leaving the rest to TensorFlow, the model and the other stages' leftovers.
# 6.7M penguin rows (the 10M bench) take about 200 MB.
IN_MEMORY_BYTES = 512 * 2**20
# Examples per read batch when filling memory: large batches amortise tf.data's and the
# transform graph's per-call cost; the training batch is chosen afterwards, from the count.
READ_BATCH = 4096
# Training steps per call into the traced step function: the same updates, with Keras's
# Python loop and callbacks entered once per this many steps instead of once per step
# (a step of this small network costs about as much as that loop).
STEPS_PER_EXECUTION = 16


def _dataset(fn_args, files, raw_schema, transform_layer, label, batch_size, shuffle=True, known_classes=None,
             layout=None, transform=None):
    """(transformed features, label) batches from raw examples: Transform wrote none out,
    the graph is applied here (as it is at serving). With a layout, the features come
    packed as the model takes them (`pack`). transform: _transform_fn's, shared by the
    splits' datasets so the transform graph is traced once for both."""
    transform = transform or _transform_fn(transform_layer, label, known_classes, layout)
    # reader_num_threads=None: files interleaved without reader threads. tfx_bsl's default
    # (AUTOTUNE) passes records one by one through a parallel interleave, which made
    # reading 667k records 14.0 s instead of 2.6 s here, with one file per split
    # (tfx_bsl 1.16 tfxio/dataset_util.py make_tf_record_dataset).
    options = tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1,
                                             shuffle=shuffle, shuffle_seed=SEED,
                                             reader_num_threads=None)
    return fn_args.data_accessor.tf_dataset_factory(files, options, raw_schema).map(
        transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _transform_fn(transform_layer, label, known_classes, layout):
    """raw batch -> (transformed features, label), rows the loss cannot use left out. A
    tf.function: each dataset's map traces its own function, but the calls inside reuse
    this one's trace (the transform graph's, the costly part) for the same raw spec."""
    @tf.function(autograph=False)
    def transform(raw):
        features = transform_layer(raw)
        labels = features.pop(label)
        if layout is not None:
            features = pack(features, layout)
        if known_classes is None:  # regression: a row without a target (NaN) is left out
            # (an integer target has no NaN: is_finite refuses int64)
            known = tf.math.is_finite(labels) if labels.dtype.is_floating else tf.ones_like(labels, tf.bool)
        else:
            # A class the train split lacks has the label vocabulary's OOV id (known_classes):
            # the model has no output for it, so it cannot count in the loss (a class id past
            # the outputs crashed the Trainer: "label value of -1 outside [0, N)"). The
            # Evaluator still counts such rows, as misses. A row without a label
            # (preprocessing.MISSING_LABEL) is left out of both.
            known = (labels < known_classes) & (labels >= 0)
        return {k: tf.boolean_mask(v, known) for k, v in features.items()}, tf.boolean_mask(labels, known)

    return transform


def read_in_memory(batches, limit_bytes: int, max_examples: int | None = None):
    """({feature: array}, labels) of every example in `batches` (a dataset of dense
    (features, label) batches), or None as soon as they would take more than limit_bytes
    (or a feature is not a dense tensor), so a split too large for memory costs at most that
    much reading before it is streamed instead. max_examples: keep the first ones only."""
    columns, size, count = {}, 0, 0  # name -> list of batch arrays; LABEL_KEY for the label
    for features, labels in batches:
        tensors = {**features, _LABEL_KEY: labels}
        if not all(isinstance(t, tf.Tensor) for t in tensors.values()):
            return None  # sparse or ragged: stream it, as TFX's own input_fn would
        for name, tensor in tensors.items():
            array = tensor.numpy()
            size += array.nbytes
            columns.setdefault(name, []).append(array)
        if size > limit_bytes:
            return None
        count += len(labels)
        if max_examples is not None and count >= max_examples:
            break
    if not columns:
        return None
    # One column at a time, its batches freed as it is joined: at most the data plus one
    # column in memory, not twice the data.
    arrays = {name: np.concatenate(columns.pop(name))[:max_examples] for name in list(columns)}
    return arrays, arrays.pop(_LABEL_KEY)


def count_examples(file_pattern) -> int:
    """Records in the split's files (ExampleGen writes GZIP TFRecords)."""
    patterns = file_pattern if isinstance(file_pattern, (list, tuple)) else [file_pattern]
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    count = 0
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        count += int(tf.data.TFRecordDataset(path, compression_type=compression)
                     .reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    return count


def batch_size_for(examples: int) -> int:
    """32 for small tables, growing with the data (about 200 steps per epoch), at most 1024:
    small batches generalise better on little data, large ones keep an epoch over millions
    of rows affordable on a laptop's cores."""
    return int(min(1024, max(32, 2 ** round(math.log2(max(examples, 1) / 200)))))


def learning_rate_for(batch_size: int) -> float:
    """Adam's 0.01 at batch 32, scaled with the square root of the batch (at most 0.03)."""
    return min(0.03, 0.01 * math.sqrt(batch_size / 32))


class _WallTimeBudget(keras.callbacks.Callback):
    """Stops training once the budget is spent (checked after every batch)."""

    def __init__(self, seconds: float):
        super().__init__()
        self._supports_tf_logs = True  # reads no logs: Keras need not copy them out every batch
        self.seconds, self.started, self.exhausted = seconds, None, False

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.started > self.seconds:
            self.exhausted = True
            self.model.stop_training = True


DEFAULT_HIDDEN = (32, 16)


def hidden_layers(tuned: dict) -> tuple:
    """The dense layers' widths: the tuned `units` halving over `layers`, else the default."""
    if "units" not in tuned:
        return DEFAULT_HIDDEN
    return tuple(max(4, int(tuned["units"]) // 2 ** i) for i in range(int(tuned.get("layers", 2))))


def tuned_values(fn_args) -> dict:
    """The best hyperparameters the Tuner found (TFX hands the Trainer KerasTuner's
    HyperParameters config: {"space": [...], "values": {...}}); {} without a Tuner."""
    return dict((getattr(fn_args, "hyperparameters", None) or {}).get("values", {}))


# The model's two inputs. Every transformed feature used to be one Keras Input (and a vocabulary
# id one CategoryEncoding layer): at 1,000 columns the Trainer spent minutes building,
# tracing and saving a 1,000-input graph, far more than training on 500 rows (issue 23).
# Now the features are packed into two tensors before the model (`pack`, in the input
# pipeline and in the serving signature), so the model's graph is the same at any width.
NUMERIC = "numeric"  # [batch, numeric features]: every float feature, in name order
CATEGORIES = "categories"  # [batch, vocabulary features]: each id offset into one shared one-hot space


class FeatureLayout:
    """Where each transformed feature goes in the model's two inputs: float features are
    the columns of NUMERIC; vocabulary ids the columns of CATEGORIES, each column's ids
    shifted by the vocabularies before it, so one multi-hot encoding over all of them
    equals the concatenated one-hot encodings of every column."""

    def __init__(self, numeric: list, categorical: list, depths: list):
        self.numeric, self.categorical, self.depths = numeric, categorical, depths
        self.offsets = [sum(depths[:i]) for i in range(len(depths))]
        self.tokens = sum(depths)


def feature_layout(tf_transform_output, label) -> FeatureLayout:
    numeric, categorical, depths = [], [], []
    for name, spec in sorted(tf_transform_output.transformed_feature_spec().items()):
        if name == label:
            continue
        if spec.dtype == tf.int64:  # a vocabulary id: one-hot over the vocabulary + OOV
            categorical.append(name)
            depths.append(tf_transform_output.vocabulary_size_by_name(
                preprocessing.vocabulary_name(name)) + preprocessing.OOV_BUCKETS)
        else:
            numeric.append(name)
    return FeatureLayout(numeric, categorical, depths)


@tf.autograph.experimental.do_not_convert  # graph code already: AutoGraph would re-parse it per trace
def pack(features: dict, layout: FeatureLayout) -> dict:
    """The model's inputs from a batch of transformed features ({name: [batch] or [batch, 1]})."""
    packed = {}
    if layout.numeric:
        packed[NUMERIC] = tf.stack([tf.reshape(tf.cast(features[n], tf.float32), [-1])
                                    for n in layout.numeric], axis=1)
    if layout.categorical:
        ids = tf.stack([tf.reshape(tf.cast(features[n], tf.int64), [-1]) for n in layout.categorical], axis=1)
        depths = tf.constant(layout.depths, tf.int64)
        # An id outside its column's range (a module file's default_value=-1) is that
        # column's last id, its OOV bucket, instead of landing in a neighbour's range.
        ids = tf.where((ids < 0) | (ids >= depths), depths - 1, ids)
        packed[CATEGORIES] = ids + tf.constant(layout.offsets, tf.int64)
    return packed


def _build_model(tf_transform_output, label, task, learning_rate, hidden=DEFAULT_HIDDEN):
    layout = feature_layout(tf_transform_output, label)
    inputs, encoded = {}, []
    if layout.numeric:
        inputs[NUMERIC] = keras.layers.Input(shape=(len(layout.numeric),), name=NUMERIC, dtype=tf.float32)
        encoded.append(inputs[NUMERIC])
    if layout.categorical:
        inputs[CATEGORIES] = keras.layers.Input(shape=(len(layout.categorical),), name=CATEGORIES, dtype=tf.int64)
        encoded.append(keras.layers.CategoryEncoding(num_tokens=layout.tokens, output_mode="multi_hot")(
            inputs[CATEGORIES]))
    x = keras.layers.concatenate(encoded) if len(encoded) > 1 else encoded[0]
    for width in hidden:
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
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics,
                  steps_per_execution=STEPS_PER_EXECUTION)
    # Adam's slots made now, not inside the first trace of the training step: a tf.function
    # whose first trace creates variables is traced a second time (TF's variable lifting),
    # which doubled the costliest trace of a small run's Trainer.
    model.optimizer.build(model.trainable_variables)
    return model


def _serving_spec(raw_spec: dict, label: str) -> dict:
    """What a serving request is parsed with: the raw spec, the label included (a dense label
    defaulted, as requests have none): the transform graph is then fed the same inputs as in
    training, so the Trainer prunes it once for all its callers (transform_once.py); the
    transformed label is left out of the model's inputs."""
    spec = dict(raw_spec)
    dense = spec.get(label)
    if isinstance(dense, tf.io.FixedLenFeature) and dense.default_value is None:
        empty = b"" if dense.dtype == tf.string else 0
        spec[label] = tf.io.FixedLenFeature(dense.shape, dense.dtype, default_value=np.full(
            dense.shape, empty, dtype=object if dense.dtype == tf.string else dense.dtype.as_numpy_dtype).tolist())
    return spec


def _signatures(model, tf_transform_output, label, task):
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = _serving_spec(raw_spec, label)
    layout = feature_layout(tf_transform_output, label)
    class_names = None
    if task == "classification":
        class_names = tf.constant(tf_transform_output.vocabulary_by_name(preprocessing.LABEL_VOCABULARY))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        features = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        output = model(pack(features, layout))
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


def _training_data(fn_args, tf_transform_output, transform_layer, label, config):
    """(fit arguments, examples, batch size, where the data is held): the training and
    the first MAX_VALIDATION_EXAMPLES eval examples in memory when the training split fits
    IN_MEMORY_BYTES, else datasets that read the records every epoch."""
    raw_schema = tf_transform_output.raw_metadata.schema
    known_classes = (tf_transform_output.vocabulary_size_by_name(preprocessing.LABEL_VOCABULARY)
                     if config.get("task") == "classification" else None)

    layout = feature_layout(tf_transform_output, label)
    transform = _transform_fn(transform_layer, label, known_classes, layout)

    def dataset(*args, **kwargs):
        return _dataset(*args, known_classes=known_classes, layout=layout, transform=transform, **kwargs)

    train = read_in_memory(
        dataset(fn_args, fn_args.train_files, raw_schema, transform_layer, label, READ_BATCH,
                 shuffle=False), IN_MEMORY_BYTES)
    if train is not None:
        examples = len(train[1])
        batch_size = int(config.get("batch_size") or batch_size_for(examples))
        evaluation = read_in_memory(
            dataset(fn_args, fn_args.eval_files, raw_schema, transform_layer, label, READ_BATCH,
                     shuffle=False), IN_MEMORY_BYTES, MAX_VALIDATION_EXAMPLES)
        if evaluation is None:
            raise ValueError("the eval split is empty: early stopping has nothing to watch")
        # Keras shuffles the whole array every epoch (seeded by set_random_seed).
        fit = {"x": train[0], "y": train[1], "batch_size": batch_size, "shuffle": True,
               "validation_data": evaluation, "validation_batch_size": READ_BATCH}
        return fit, examples, batch_size, "memory"
    examples = count_examples(fn_args.train_files)
    if examples == 0:
        raise ValueError("the training split is empty: nothing to train on")
    batch_size = int(config.get("batch_size") or batch_size_for(examples))
    validation_batches = max(1, MAX_VALIDATION_EXAMPLES // batch_size)
    fit = {"x": dataset(fn_args, fn_args.train_files, raw_schema, transform_layer, label, batch_size),
           "validation_data": dataset(fn_args, fn_args.eval_files, raw_schema, transform_layer,
                                       label, batch_size).take(validation_batches).cache()}
    return fit, examples, batch_size, "streamed"


def run_fn(fn_args):
    with collecting_only_new_objects():
        try:
            _train_and_save(fn_args)
        finally:
            release_memory()


@contextlib.contextmanager
def collecting_only_new_objects():
    """What the process held before (TensorFlow's, TFX's and the run's objects, millions)
    is set aside from the collector meanwhile: release_memory's full collection then walks
    only what training made (0.40 -> 0.03 s on the embedded data, docs/performance.md).
    Nothing older is freed any later than the next collection after this."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def release_memory() -> None:
    """Hands back what the training held (the model, TFT's layer, the data read into
    memory, the traced functions) before the next stage runs in this process, where the
    InfraValidator's model server starts beside it: the Trainer alone on a 1,000-column
    table left 1,936 MB resident, 971 MB with this (docs/performance.md, wide tables).
    Keras's models are reference cycles (gc), and glibc keeps freed memory in its arenas
    until told (malloc_trim)."""
    keras.backend.clear_session()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is freed, only not returned yet
        pass


def _train_and_save(fn_args):
    config = fn_args.custom_config or {}
    label, task = config["label"], config["task"]
    keras.utils.set_random_seed(SEED)
    max_epochs = int(config.get("max_epochs", 100))
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    # One transform layer (one load of the transform graph) for training, validation and the
    # exported signatures; tracked by the model, so it is saved with it.
    transform_layer = transform_once.transform_features_layer(tf_transform_output)
    started = time.monotonic()
    fit, train_examples, batch_size, held = _training_data(
        fn_args, tf_transform_output, transform_layer, label, config)
    read_seconds = time.monotonic() - started
    tuned = tuned_values(fn_args)
    learning_rate = float(tuned.get("learning_rate") or config.get("learning_rate") or learning_rate_for(batch_size))
    model = _build_model(tf_transform_output, label, task, learning_rate, hidden_layers(tuned))
    model.tft_layer = transform_layer
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=int(config.get("early_stopping_patience", 5)),
        restore_best_weights=True)
    # Smaller steps once the eval loss stalls, before early stopping gives up on it.
    slower = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3,
                                               patience=max(1, stopping.patience // 2))
    budget = _WallTimeBudget(float(config.get("train_seconds", 600)))
    started = time.monotonic()
    history = model.fit(**fit, epochs=max_epochs, callbacks=[stopping, slower, budget], verbose=2)
    if budget.exhausted and stopping.best_weights is not None:
        model.set_weights(stopping.best_weights)  # Keras restores them only on its own stop
    losses = history.history.get("val_loss", [])
    record = {
        "train_examples": train_examples,
        "epochs": len(history.epoch),
        "best_epoch": (int(min(range(len(losses)), key=losses.__getitem__)) + 1) if losses else None,
        "stopped": ("time budget" if budget.exhausted else
                    "early stopping" if stopping.stopped_epoch else "epoch limit"),
        "batch_size": batch_size,
        "data": held,
        "learning_rate": learning_rate,
        "hidden": list(hidden_layers(tuned)),
        "tuned": tuned or None,
        "read_seconds": round(read_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    # Keras's traces are kept (save_traces=False would save ~0.4 s on a small table): the
    # ONNX export converts the model's traced __call__ (components/pusher/onnx_export.py).
    model.save(fn_args.serving_model_dir, save_format="tf",
               signatures=_signatures(model, tf_transform_output, label, task))
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, TRAINING_RECORD), "w") as f:
        f.write(json.dumps(record))


def tuner_fn(fn_args):
    """TFX Tuner's entry point for the built-in model: KerasTuner's random search over the
    learning rate (around the one the data size suggests), the first layer's width and the
    depth; each trial trains up to `tune_epochs` epochs with early stopping on the same
    in-memory (or streamed) data as run_fn and is scored by its best eval loss.

    The trials build tf_keras models, which KerasTuner 1.4 (on Keras 3) refuses to build
    itself, so the search runs our own trial (Tuner.run_trial overridden, as KerasTuner
    documents for custom training loops)."""
    import keras_tuner
    from tfx.components.tuner.component import TunerFnResult

    config = fn_args.custom_config or {}
    label, task = config["label"], config["task"]
    # The Tuner's fn_args carry the graph as transform_graph_path (transform_output is the
    # Trainer's deprecated alias; TFX 1.16 tfx/components/trainer/fn_args_utils.py).
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path or fn_args.transform_output)
    transform_layer = transform_once.transform_features_layer(tf_transform_output)
    fit, _, batch_size, _ = _training_data(fn_args, tf_transform_output, transform_layer, label, config)
    suggested = float(config.get("learning_rate") or learning_rate_for(batch_size))
    epochs = int(config.get("tune_epochs", 20))

    class _Search(keras_tuner.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            keras.utils.set_random_seed(SEED)
            model = _build_model(tf_transform_output, label, task,
                                 hp.Float("learning_rate", suggested / 10, suggested * 3, sampling="log"),
                                 hidden_layers({"units": hp.Choice("units", [16, 32, 64, 128]),
                                                "layers": hp.Int("layers", 1, 3)}))
            stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)
            history = model.fit(**fit, epochs=epochs, callbacks=[stopping], verbose=0)
            return {"val_loss": float(min(history.history["val_loss"]))}

    search = _Search(hypermodel=None, objective="val_loss", max_trials=int(config.get("tune_trials", 4)),
                     seed=SEED, directory=fn_args.working_dir, project_name="kubetfx", overwrite=True)
    return TunerFnResult(tuner=search, fit_kwargs={})
