"""Transform: the schema-driven preprocessing (or the user's module file) as a TF graph."""
from tfx import v1 as tfx

PREPROCESSING_FN = "kubetfx.components.transform.preprocessing.preprocessing_fn"


def custom_config(config) -> dict:
    return {"label": config.label, "task": config.task}


def build(config, example_gen, schema_gen) -> tfx.components.Transform:
    # The built-in function is imported from the installed package by dotted name, so TFX
    # does not package and pip-install a user-code wheel on every run.
    code = {"module_file": config.module_file} if config.module_file else {"preprocessing_fn": PREPROCESSING_FN}
    return tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        custom_config=custom_config(config),
        **code,
    )
