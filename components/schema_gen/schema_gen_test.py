"""SchemaGen (TFX's executor, as the pipeline builds it: infer_feature_shape=False) on the
statistics of ExampleGen's output: presence is learned from the data, so a column with
gaps is not required and a column without any is."""
from __future__ import annotations

import pytest
from tfx.components.schema_gen import executor as schema_gen
from tfx.types import standard_artifacts, standard_component_specs as keys
from tfx.utils import io_utils
from tensorflow_metadata.proto.v0 import schema_pb2

from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.statistics_gen.executor_test import _run, examples_with_gaps  # noqa: F401 (fixture)


@pytest.mark.slow  # ExampleGen, StatisticsGen and SchemaGen executors
def test_a_column_with_gaps_is_not_required(examples_with_gaps, tmp_path):  # noqa: F811
    examples, _ = examples_with_gaps
    statistics = _run(statistics_gen.Executor, examples, tmp_path / "statistics", {keys.EXCLUDE_SPLITS_KEY: "[]"})
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    # The pipeline's SchemaGen (schema_gen/component.py): infer_feature_shape=False.
    schema_gen.Executor().Do({keys.STATISTICS_KEY: [statistics]}, {keys.SCHEMA_KEY: [schema]},
                             {keys.INFER_FEATURE_SHAPE_KEY: 0, keys.EXCLUDE_SPLITS_KEY: '["eval"]'})
    inferred = io_utils.parse_pbtxt_file(f"{schema.uri}/schema.pbtxt", schema_pb2.Schema())
    features = {f.name: f for f in inferred.feature}
    for name in ("x", "n", "s"):  # gaps in the data: absent is valid, one value when present
        assert features[name].presence.min_fraction < 1, name
        assert (features[name].value_count.min, features[name].value_count.max) == (1, 1), name
    assert features["full"].presence.min_fraction == 1  # never missing: required
