"""What "same output" means when a Beam stage ran elsewhere: the statistics, transform
graph and metrics of a stage run on another runner, compared with the in-process run's.
Floats within a relative tolerance: Beam sums in the order its bundles arrive."""
from __future__ import annotations

import math
import os

REL_TOL = 1e-9


def assert_close(mine, theirs, path="", rel_tol=REL_TOL) -> None:
    if isinstance(mine, dict):
        assert mine.keys() == theirs.keys(), f"{path}: {sorted(mine)} != {sorted(theirs)}"
        for key in mine:
            assert_close(mine[key], theirs[key], f"{path}.{key}", rel_tol)
    elif isinstance(mine, (list, tuple)):
        assert len(mine) == len(theirs), f"{path}: {len(mine)} != {len(theirs)} items"
        for i, (a, b) in enumerate(zip(mine, theirs)):
            assert_close(a, b, f"{path}[{i}]", rel_tol)
    elif isinstance(mine, float) or isinstance(theirs, float):
        assert math.isclose(mine, theirs, rel_tol=rel_tol, abs_tol=1e-12), f"{path}: {mine} != {theirs}"
    else:
        assert mine == theirs, f"{path}: {mine!r} != {theirs!r}"


def statistics(uri: str) -> dict:
    """{split: DatasetFeatureStatisticsList as a dict} of a StatisticsGen output."""
    import tensorflow_data_validation as tfdv
    from google.protobuf import json_format

    found = {}
    for name in sorted(os.listdir(uri)):
        if name.startswith("Split-"):
            stats = tfdv.load_stats_binary(os.path.join(uri, name, "FeatureStats.pb"))
            as_dict = json_format.MessageToDict(stats)
            for dataset in as_dict.get("datasets", []):  # in the order first seen: Examples' own order
                dataset["features"] = sorted(dataset.get("features", []), key=lambda f: str(f["path"]))
            found[name[len("Split-"):]] = as_dict
    assert found, f"no statistics under {uri}"
    return found


def assert_same_statistics(mine_uri: str, theirs_uri: str) -> None:
    assert_close(statistics(mine_uri), statistics(theirs_uri))


def transformed(transform_graph_uri: str, example_files: list) -> dict:
    """{output name: numpy array} of a transform graph applied to these GZIP TFRecords of
    tf.Examples (parsed with the graph's own raw feature spec), sparse outputs densified."""
    import tensorflow as tf
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(transform_graph_uri)
    records = list(tf.data.TFRecordDataset(sorted(example_files), compression_type="GZIP").as_numpy_iterator())
    assert records, f"no examples in {example_files}"
    raw = tf.io.parse_example(tf.constant(records), output.raw_feature_spec())
    result = {}
    for name, tensor in output.transform_features_layer()(raw).items():
        if isinstance(tensor, tf.SparseTensor):
            tensor = tf.sparse.to_dense(tensor)
        elif isinstance(tensor, tf.RaggedTensor):
            tensor = tensor.to_tensor()
        result[name] = tensor.numpy()
    return result


def metrics(evaluation_uri: str) -> dict:
    """{(slice, metric key): value} of an Evaluator output, both as JSON-like dicts."""
    import json

    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    found = {}
    for record in tfma.load_metrics(evaluation_uri):
        slice_key = json.dumps(json_format.MessageToDict(record.slice_key), sort_keys=True)
        for item in record.metric_keys_and_values:
            key = json.dumps(json_format.MessageToDict(item.key), sort_keys=True)
            found[(slice_key, key)] = json_format.MessageToDict(item.value)
    return found
