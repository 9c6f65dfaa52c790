"""StatisticsGen: TFDV statistics per split, the base of schema, validation and monitoring."""
from tfx.dsl.components.base import executor_spec

from kubetfx.components import tfx_api as tfx
from kubetfx.components.statistics_gen import executor


def build(config, example_gen) -> tfx.components.StatisticsGen:
    component = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    # Same component, same artifact; TFDV's generators without a Beam pipeline for the
    # default options (see executor.py).
    component.executor_spec = executor_spec.BeamExecutorSpec(executor.Executor)
    return component
