"""Schema-driven preprocessing: works on any tabular data without a module file.

Numeric columns: z-score scaling with the mean and variance of the present values; a
missing value becomes 0 (the mean). Both analyzers read the raw column, so all run in one phase:
imputing first and scaling the imputed column would make a second pass over the data.
String columns: missing values become "", then a vocabulary (with one OOV bucket).
Label: a vocabulary named "label" for classification (class ids in frequency order),
the float value for regression. Transformed features keep their raw names.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

LABEL_VOCABULARY = "label"
OOV_BUCKETS = 1


def vocabulary_name(feature: str) -> str:
    return f"vocab_{feature}"


def _dense(x, default):
    """A [batch] dense tensor from a VarLen (sparse) or fixed [batch, 1] feature."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1])


def _to_float(x):
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    return tf.cast(x, tf.float32)


def _present_values(x):
    return x.values if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def _mean_filled(x):
    """Dense float values, missing ones replaced by the mean of the present ones."""
    x = _to_float(x)
    return _dense(x, tft.mean(_present_values(x)))


def _z_score(x):
    """Dense z-scores from the present values' mean and variance; missing values get 0 (the
    mean). A constant column maps to 0, as with tft.scale_to_z_score."""
    x = _to_float(x)
    values = _present_values(x)
    mean, std = tft.mean(values), tf.sqrt(tft.var(values))
    return (_dense(x, mean) - mean) / tf.where(std > 0, std, tf.ones_like(std))


def preprocessing_fn(inputs, custom_config):
    label, task = custom_config["label"], custom_config["task"]
    outputs = {}
    for name, x in inputs.items():
        is_string = x.dtype == tf.string
        if name == label:
            if task == "classification":
                raw = _dense(x, "") if is_string else tf.strings.as_string(_dense(x, tf.cast(0, x.dtype)))
                outputs[name] = tft.compute_and_apply_vocabulary(raw, vocab_filename=LABEL_VOCABULARY)
            else:
                outputs[name] = _mean_filled(x)
        elif is_string:
            outputs[name] = tft.compute_and_apply_vocabulary(
                _dense(x, ""), num_oov_buckets=OOV_BUCKETS, vocab_filename=vocabulary_name(name))
        else:
            outputs[name] = _z_score(x)
    return outputs
