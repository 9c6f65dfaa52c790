"""Schema-driven preprocessing: works on any tabular data without a module file.

A missing value arrives as an absent feature (ExampleGen leaves it out of the Example, as
a request leaves the field out; the schema does not require it), parsed as a VarLenFeature:
a SparseTensor row without a value. A dense [batch, 1] input (a feature the schema gives a
shape) works too.
Numeric columns: z-score scaling with the mean and variance of the present values; a
missing value becomes 0 (the mean). Both analyzers read the raw column, so all run in one phase:
imputing first and scaling the imputed column would make a second pass over the data. All
numeric columns are analyzed together, as the columns of one sparse matrix (one mean and
one variance analyzer whatever the width): an analyzer per column made Transform's graph,
and its time, grow faster than the number of columns (20k rows: 14 s at 33 columns, 186 s
at 303).
String columns: missing values become "", then a vocabulary (with one OOV bucket).
Identifier and free-text columns are left out and ISO date/time strings become numeric parts (see
column_roles.py; the roles come in custom_config["column_roles"]).
Label: a vocabulary named "label" for classification (class ids in frequency order, then
one id for a class the train split does not have), the float value for regression. Transformed features keep their raw names.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

import tensorflow as tf
import tensorflow_transform as tft

from kubetfx.components.transform import column_roles

LABEL_VOCABULARY = "label"
OOV_BUCKETS = 1
# The label vocabulary is built from the train split; a class only the eval split (or a
# feedback label) has becomes the id after the last class, "unseen class", which the
# model has an output for and never learns to predict: counted as a miss. Without it the
# id was -1 and the Trainer crashed ("label value of -1 outside [0, N)").
LABEL_OOV_BUCKETS = 1
UNSEEN_CLASS = "<unseen class>"
# A row without a label (an empty cell) is unlabeled, not a class: its class id is
# MISSING_LABEL (a regression target NaN), which the Trainer and the Evaluator leave out.
# It was the class "" (or "0" for a number label), or the mean target for regression: the
# model learned to answer "no label" and a made-up value.
MISSING_LABEL = -1


# What TensorFlow accepts in a scope name: tft names scopes after the vocabulary
# ("vocab_<name>_unpruned_vocab_size"), so 'Île' or 'prix €' crashed Transform.
_SCOPE_SAFE = re.compile(r"^[A-Za-z0-9_.\-]*$")


def vocabulary_name(feature: str) -> str:
    """`vocab_<feature>`, or, for a name TensorFlow refuses in scopes, an ASCII slug of it
    plus a hash of the whole name (two names with one slug stay apart). The slug keeps it
    readable where a file is listed; reports name the column itself."""
    if _SCOPE_SAFE.match(feature):
        return f"vocab_{feature}"  # unchanged: earlier runs' vocabularies keep their names
    ascii_name = unicodedata.normalize("NFKD", feature).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_.\-]+", "_", ascii_name).strip("_")[:40]
    digest = hashlib.sha256(feature.encode("utf-8")).hexdigest()[:8]
    return f"vocab_{slug}_{digest}" if slug else f"vocab_{digest}"


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


def _as_sparse_column(x):
    """A float [batch, 1] SparseTensor holding the present values of one feature."""
    x = _to_float(x)
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, x.values, tf.stack([x.dense_shape[0], tf.constant(1, tf.int64)]))
    values = tf.reshape(x, [-1])  # every row present (tf.sparse.from_dense would drop zeros)
    rows = tf.range(tf.size(values, out_type=tf.int64))
    return tf.SparseTensor(tf.stack([rows, tf.zeros_like(rows)], axis=1), values,
                           tf.stack([tf.size(values, out_type=tf.int64), tf.constant(1, tf.int64)]))


def _present_only(values):
    """A [batch, 1] SparseTensor of the non-NaN entries of a dense [batch] float tensor."""
    rows = tf.where(tf.logical_not(tf.math.is_nan(values)))[:, 0]
    return tf.SparseTensor(tf.stack([rows, tf.zeros_like(rows)], axis=1), tf.gather(values, rows),
                           tf.stack([tf.size(values, out_type=tf.int64), tf.constant(1, tf.int64)]))


def _z_scores(columns: dict) -> dict:
    """Dense z-scores of every numeric column, from each column's present values' mean and
    variance; missing values get 0 (the mean). A constant column maps to 0, as with
    tft.scale_to_z_score. One analyzer pass for all columns together."""
    names = sorted(columns)
    if not names:
        return {}
    sparse = [_as_sparse_column(columns[n]) for n in names]
    matrix = tf.sparse.concat(1, sparse)
    # Per column over the present values only (reduce_instance_dims=False on a SparseTensor).
    mean = tft.mean(matrix, reduce_instance_dims=False)
    std = tf.sqrt(tft.var(matrix, reduce_instance_dims=False))
    # A column with no present value at all has a 0/0 mean: every row of it becomes 0.
    mean = tf.where(tf.math.is_nan(mean), tf.zeros_like(mean), mean)
    scale = tf.where(std > 0, std, tf.ones_like(std))
    # Each output from its own column and the analyzers' results (constants in the written
    # graph), not a slice of the whole matrix: TFT's TransformFeaturesLayer walks the graph
    # back from every output, so slices of one matrix made loading it quadratic in the
    # columns (the Trainer of a 1,000-column table spent minutes there; issue 23).
    # unstack: one op for all the columns' statistics, not a slice (and its constants) each;
    # every op here is copied each time the Trainer applies the graph.
    means, scales = tf.unstack(mean, num=len(names)), tf.unstack(scale, num=len(names))
    return {name: (tf.reshape(tf.sparse.to_dense(column, default_value=m), [-1]) - m) / s
            for name, column, m, s in zip(names, sparse, means, scales)}


def _present_rows(x):
    """[batch] bool: the rows that have a value."""
    if not isinstance(x, tf.SparseTensor):
        return tf.ones_like(tf.reshape(x, [-1]), dtype=tf.bool)
    return _dense(tf.SparseTensor(x.indices, tf.ones_like(x.values, dtype=tf.bool), x.dense_shape), False)


def _label(x, task):
    """Class ids from the present labels' vocabulary (classification) or float targets;
    MISSING_LABEL / NaN where the row has none."""
    present = _present_rows(x)
    if task != "classification":
        return tf.where(present, _dense(_to_float(x), 0.0), tf.fill(tf.shape(present), float("nan")))
    as_text = (lambda v: v) if x.dtype == tf.string else tf.strings.as_string
    vocabulary = tft.vocabulary(as_text(_present_values(x)), vocab_filename=LABEL_VOCABULARY)
    ids = tft.apply_vocabulary(as_text(_dense(x, "" if x.dtype == tf.string else tf.cast(0, x.dtype))),
                               vocabulary, num_oov_buckets=LABEL_OOV_BUCKETS)
    return tf.where(present, ids, tf.constant(MISSING_LABEL, ids.dtype))


def preprocessing_fn(inputs, custom_config):
    label, task = custom_config["label"], custom_config["task"]
    roles = custom_config.get("column_roles") or {}
    identifiers, datetimes = column_roles.left_out(roles), set(roles.get("datetimes", []))  # ids, free text
    outputs, numeric = {}, {}
    for name, x in inputs.items():
        is_string = x.dtype == tf.string
        if name in identifiers and name != label:
            continue
        if name in datetimes and name != label and is_string:
            for part, values in column_roles.datetime_parts(_dense(x, "")).items():
                numeric[f"{name}__{part}"] = _present_only(values)
            continue
        if name == label:
            outputs[name] = _label(x, task)
        elif is_string:
            outputs[name] = tft.compute_and_apply_vocabulary(
                _dense(x, ""), num_oov_buckets=OOV_BUCKETS, vocab_filename=vocabulary_name(name))
        else:
            numeric[name] = x
    outputs.update(_z_scores(numeric))
    return outputs
