"""StatisticsGen: TFDV statistics per split, the base of schema, validation and monitoring."""
from kubetfx.components import tfx_api as tfx


def build(config, example_gen) -> tfx.components.StatisticsGen:
    return tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
