"""ExampleValidator: anomalies of the new data's statistics against the schema; error
anomalies stop the run unless `on_anomalies: warn`."""
from tfx.dsl.components.base import executor_spec

from kubetfx.components import tfx_api as tfx
from kubetfx.components.example_validator import executor


def build(config, statistics_gen, schema_gen) -> tfx.components.ExampleValidator:
    validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    if config.on_anomalies == "fail":
        validator.executor_spec = executor_spec.ExecutorClassSpec(executor.FailOnAnomaliesExecutor)
    return validator
