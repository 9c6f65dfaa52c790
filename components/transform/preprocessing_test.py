"""The built-in preprocessing_fn through real TFT analysis (Beam, in memory), both tracing modes."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from kubetfx.components.transform import preprocessing

SPEC = {"x": tf.io.VarLenFeature(tf.float32), "colour": tf.io.VarLenFeature(tf.string),
        "y": tf.io.VarLenFeature(tf.string)}
ROWS = [{"x": [1.0], "colour": ["red"], "y": ["a"]},
        {"x": [3.0], "colour": ["red"], "y": ["b"]},
        {"x": [], "colour": [], "y": ["a"]}]


def _transform(tmp_path, force_tf_compat_v1):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=force_tf_compat_v1):
        (rows, _), _ = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"label": "y", "task": "classification"}))
    return rows


@pytest.mark.slow  # a real Beam pipeline (TFT analysis)
@pytest.mark.parametrize("force_tf_compat_v1", [True, False])
def test_numeric_columns_are_z_scored_by_present_values_and_missing_ones_are_zero(tmp_path, force_tf_compat_v1):
    rows = _transform(tmp_path, force_tf_compat_v1)
    # Present values 1 and 3: mean 2, variance 1. Imputing first would have scaled by
    # the variance of [1, 3, 2] (2/3) instead.
    np.testing.assert_allclose([r["x"] for r in rows], [-1.0, 1.0, 0.0], atol=1e-6)
    assert [r["y"] for r in rows] == [0, 1, 0]  # class ids in frequency order
    assert rows[0]["colour"] == rows[1]["colour"] != rows[2]["colour"]  # "" is its own token


def test_numeric_columns_are_scaled_each_by_its_own_present_values_zeros_included(tmp_path):
    """All numeric columns are analyzed as one sparse matrix: each column keeps its own
    statistics and missing pattern, and a present 0 is a value, not a missing one."""
    spec = {"a": tf.io.VarLenFeature(tf.float32), "b": tf.io.VarLenFeature(tf.int64),
            "c": tf.io.FixedLenFeature([1], tf.float32), "e": tf.io.VarLenFeature(tf.float32),
            "y": tf.io.VarLenFeature(tf.string)}
    rows = [{"a": [0.0], "b": [], "c": [10.0], "e": [], "y": ["p"]},
            {"a": [2.0], "b": [5], "c": [10.0], "e": [], "y": ["q"]},
            {"a": [], "b": [7], "c": [10.0], "e": [], "y": ["p"]}]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=True):
        (out, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"label": "y", "task": "classification"}))
    np.testing.assert_allclose([r["a"] for r in out], [-1.0, 1.0, 0.0], atol=1e-6)  # mean 1 of {0, 2}
    np.testing.assert_allclose([r["b"] for r in out], [0.0, -1.0, 1.0], atol=1e-6)  # mean 6 of {5, 7}
    np.testing.assert_allclose([r["c"] for r in out], [0.0, 0.0, 0.0], atol=1e-6)  # constant
    # Never present (an empty column in the data): zeros, not NaN (NaN would poison training).
    np.testing.assert_array_equal([r["e"] for r in out], [0.0, 0.0, 0.0])


def test_vocabulary_names_are_safe_scope_names_distinct_and_readable():
    import re
    names = ["island", "Île", "日本語", "prix €", "prix $", "größe"]
    vocabularies = [preprocessing.vocabulary_name(n) for n in names]
    assert vocabularies[0] == "vocab_island"  # an ASCII name keeps its vocabulary's name
    assert all(re.fullmatch(r"[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*", v) for v in vocabularies), vocabularies
    assert len(set(vocabularies)) == len(names)  # 'prix €' and 'prix $' share a slug, not a name
    assert vocabularies[1].startswith("vocab_Ile_") and vocabularies[5].startswith("vocab_groe_")


def test_unicode_column_names_and_values_are_analyzed(tmp_path):
    """Transform crashed: "'vocab_Île_unpruned_vocab_size' is not a valid scope name"."""
    spec = {"Île": tf.io.VarLenFeature(tf.string), "prix €": tf.io.VarLenFeature(tf.float32),
            "größe": tf.io.VarLenFeature(tf.string), "y": tf.io.VarLenFeature(tf.string)}
    rows = [{"Île": ["日本語"], "prix €": [1.0], "größe": ["groß"], "y": ["é"]},
            {"Île": ["Île"], "prix €": [3.0], "größe": ["klein"], "y": ["ü"]},
            {"Île": ["日本語"], "prix €": [], "größe": ["groß"], "y": ["é"]}]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=True):
        (out, _), _ = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"label": "y", "task": "classification"}))
    assert [r["Île"] for r in out] == [0, 1, 0]  # '日本語' is the most frequent value
    assert [r["y"] for r in out] == [0, 1, 0]
    np.testing.assert_allclose([r["prix €"] for r in out], [-1.0, 1.0, 0.0], atol=1e-6)


def test_a_class_the_analyzed_split_lacks_gets_the_id_after_the_last_class(tmp_path):
    """Transform analyzes the train split only: a class only the eval split has was -1,
    and the Trainer crashed ("label value of -1 outside [0, N)")."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))

    def fn(inputs):
        return preprocessing.preprocessing_fn(inputs, {"label": "y", "task": "classification"})

    evaluation = [{"x": [2.0], "colour": ["red"], "y": ["only in eval"]}, {"x": [2.0], "colour": ["red"], "y": ["b"]}]
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=True):
        transform_fn = (ROWS, metadata) | tft_beam.AnalyzeDataset(fn)
        out, _ = ((evaluation, metadata), transform_fn) | tft_beam.TransformDataset()
    assert [r["y"] for r in out] == [2, 1]  # classes a (0) and b (1), then the unseen one


def test_a_row_without_a_label_is_no_class_and_no_value(tmp_path):
    """An empty label cell became the class "" (classification; a number label the class
    "0") or the mean (regression): the model learned to predict "no label" and a made-up
    target. Now it is MISSING_LABEL / NaN, which the Trainer and the Evaluator leave out."""
    spec = {"x": tf.io.VarLenFeature(tf.float32), "y": tf.io.VarLenFeature(tf.string),
            "n": tf.io.VarLenFeature(tf.int64), "t": tf.io.VarLenFeature(tf.float32)}
    rows = [{"x": [1.0], "y": ["a"], "n": [3], "t": [1.0]},
            {"x": [2.0], "y": [], "n": [], "t": []},
            {"x": [3.0], "y": [], "n": [], "t": []},
            {"x": [4.0], "y": ["b"], "n": [4], "t": [3.0]},
            {"x": [5.0], "y": ["a"], "n": [3], "t": [5.0]}]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))

    def analyze(label, task):
        def fn(inputs):
            return preprocessing.preprocessing_fn(inputs, {"label": label, "task": task})
        with tft_beam.Context(temp_dir=str(tmp_path / label), force_tf_compat_v1=True):
            (out, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(fn)
        return [r[label] for r in out]

    assert analyze("y", "classification") == [0, -1, -1, 1, 0]  # "" is not a class
    assert analyze("n", "classification") == [0, -1, -1, 1, 0]  # nor is "0"
    regression = analyze("t", "regression")
    np.testing.assert_allclose([regression[i] for i in (0, 3, 4)], [1.0, 3.0, 5.0])
    assert np.isnan(regression[1]) and np.isnan(regression[2])  # not the mean, 3.0
