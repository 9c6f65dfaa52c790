"""SchemaGen: a curated schema imported from the repo when configured, else inferred."""
from kubetfx.components import tfx_api as tfx


def build(config, statistics_gen):
    if config.schema_file:
        return tfx.components.ImportSchemaGen(schema_file=str(config.schema_file))
    return tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=False)
