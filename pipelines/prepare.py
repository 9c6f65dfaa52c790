"""What every runner does before building the pipeline: check the input, settle the task."""
from __future__ import annotations

from pathlib import Path

from kubetfx.components.example_gen import csv_input
from kubetfx.components.transform import column_roles
from kubetfx.pipelines import baseline
from kubetfx.pipelines.config import PipelineConfig

CURATED_SCHEMA = Path(__file__).resolve().parent / "schemas" / "penguins.schema.pbtxt"


def prepare(config: PipelineConfig) -> PipelineConfig:
    """Raises csv_input.InputError / ConfigError with a message the user can act on."""
    config.validate()
    csv_input.check(config.data, config.label)
    task = config.task or csv_input.infer_task(config.data, config.label)
    schema_file = config.schema_file
    if schema_file is None and config.uses_embedded_data:
        schema_file = str(CURATED_SCHEMA)
    if schema_file is None:
        schema_file = baseline.latest_pushed_schema(str(config.metadata_path), config.name)
    roles = config.column_roles
    if roles is None:
        roles = column_roles.infer(csv_input.csv_files(config.data), config.label)
    return config.replace(task=task, schema_file=schema_file, column_roles=roles)
