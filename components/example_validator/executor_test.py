"""The data gate on real executors and small tables: ExampleGen, StatisticsGen and SchemaGen
on clean rows give the schema; new rows are validated against it. Clean rows pass; a
column whose numbers turn to text is an error anomaly that stops the run with a message
naming it and a copy of the anomalies kept where the user can read them."""
from __future__ import annotations

import os

import pytest
from tfx.components.schema_gen import executor as schema_gen
from tfx.types import standard_artifacts, standard_component_specs as keys

from kubetfx.components.example_gen import executor as example_gen
from kubetfx.components.example_gen.executor_test import run_example_gen
from kubetfx.components.example_validator import executor as validator
from kubetfx.components.statistics_gen import executor as statistics_gen
from kubetfx.components.statistics_gen.executor_test import _run as run_statistics_gen

pytestmark = pytest.mark.slow  # ExampleGen, StatisticsGen, SchemaGen and ExampleValidator executors


def _statistics(tmp_path, name: str, rows: list):
    folder = tmp_path / name / "csv"
    folder.mkdir(parents=True)
    (folder / "part.csv").write_text("count,price,name\n" + "\n".join(rows) + "\n")
    examples = run_example_gen(example_gen.Executor, folder, tmp_path / name / "examples")
    return run_statistics_gen(statistics_gen.Executor, examples, tmp_path / name / "statistics",
                              {keys.EXCLUDE_SPLITS_KEY: "[]"})


CLEAN = [f"{i % 7},{i * 0.5},name{i % 3}" for i in range(90)]


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("schema")
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    # As the pipeline's SchemaGen (schema_gen/component.py): infer_feature_shape=False.
    schema_gen.Executor().Do({keys.STATISTICS_KEY: [_statistics(tmp_path, "clean", CLEAN)]},
                             {keys.SCHEMA_KEY: [schema]}, {keys.INFER_FEATURE_SHAPE_KEY: 0,
                                                           keys.EXCLUDE_SPLITS_KEY: '["eval"]'})
    return schema


def _validate(tmp_path, schema, rows: list):
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "validator" / "anomalies" / "1")
    validator.FailOnAnomaliesExecutor().Do(
        {keys.STATISTICS_KEY: [_statistics(tmp_path, "new", rows)], keys.SCHEMA_KEY: [schema]},
        {keys.ANOMALIES_KEY: [anomalies]}, {keys.EXCLUDE_SPLITS_KEY: "[]"})
    return anomalies


def test_clean_rows_pass_the_gate(tmp_path, schema):
    anomalies = _validate(tmp_path, schema, [f"{i % 7},{i * 0.25},name{i % 3}" for i in range(60)])
    assert validator.error_anomalies(anomalies.uri) == []


def test_numbers_turned_to_text_stop_the_run_naming_the_column(tmp_path, schema):
    rows = [f"many,{i * 0.5},name{i % 3}" if i % 2 else f"{i % 7},{i * 0.5},name{i % 3}" for i in range(60)]
    with pytest.raises(validator.DataRejectedError) as raised:
        _validate(tmp_path, schema, rows)
    message = str(raised.value)
    assert "error anomalies; the run stops before Transform" in message
    assert "column 'count'" in message and "'price'" not in message and "'name'" not in message
    kept = message.split("Full anomalies: ")[1].splitlines()[0]
    assert kept == str(tmp_path / "validator" / "rejected_anomalies" / "1") and os.listdir(kept)
    assert validator.error_anomalies(kept) == [line.strip() for line in message.splitlines()[1:]
                                                if line.startswith("  [")]
