"""Wide tables (issue 23): the built-in preprocessing's transform graph, as TFT writes it
for the Trainer and the serving signature, keeps each output column apart.

TFT's TransformFeaturesLayer walks the graph back from every output to find the inputs it
needs (tensorflow_transform 1.16 saved/saved_transform_io_v2.py _get_output_to_inputs_map,
graph_tools.retrieve_sources): when every z-score was a slice of one matrix of all the
columns, each walk covered the whole graph, and loading the layer for a 1,000-column,
500-row table took the Trainer minutes before it read a row."""
from __future__ import annotations

import apache_beam as beam
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from kubetfx.components.transform import preprocessing

COLUMNS = 12


def _graph_inputs_of(tensor) -> set:
    """Names of the placeholders (the graph's inputs) `tensor` is computed from."""
    seen, stack, placeholders = set(), [tensor.op], set()
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type == "Placeholder":
            placeholders.add(op.name)
        stack.extend(t.op for t in op.inputs)
    return placeholders


@pytest.mark.slow  # a real Beam pipeline (TFT analysis)
def test_each_numeric_output_is_computed_from_its_own_column_only(tmp_path):
    names = [f"x{i:02d}" for i in range(COLUMNS)]
    spec = {**{n: tf.io.VarLenFeature(tf.float32) for n in names}, "y": tf.io.VarLenFeature(tf.string)}
    rows = [{**{n: [float(r + i)] if (r + i) % 4 else [] for i, n in enumerate(names)}, "y": ["ab"[r % 2]]}
            for r in range(4)]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        transform_fn = ((pipeline | beam.Create(rows), metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"label": "y", "task": "classification"})))
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "out"))
    saved = tf.saved_model.load(tft.TFTransformOutput(str(tmp_path / "out")).transform_savedmodel_dir)
    function = getattr(saved.transform_fn, "concrete_functions", [saved.transform_fn])[0]
    outputs = tf.nest.pack_sequence_as(function.graph.structured_outputs, function.graph.outputs,
                                       expand_composites=True)
    assert sorted(n for n in outputs if n != "y") == names
    sources = {n: _graph_inputs_of(outputs[n]) for n in names}
    shared = set.intersection(*sources.values())  # the analyzers' results, captured by the graph
    own = {n: s - shared for n, s in sources.items()}
    # A VarLen column arrives as three placeholders (indices, values, dense shape); before,
    # every output was computed from every column's.
    assert all(len(s) == 3 for s in own.values()), {n: len(s) for n, s in sources.items()}
    assert len(set().union(*own.values())) == 3 * COLUMNS and len(shared) <= 4, shared
