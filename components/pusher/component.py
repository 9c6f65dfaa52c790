"""Pusher: copies a model blessed by Evaluator AND InfraValidator to a versioned directory,
with the schema and training statistics it was trained on beside it (for the monitor).

TFX's Pusher spec plus two optional inputs, `schema` and `statistics`, and the label and
task in its `custom_config`: a pod that mounts the serving volume reads what the served
model learned from there (training_summary.py). The node id stays "Pusher"."""
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from kubetfx.components import tfx_api as tfx
from kubetfx.components.pusher import executor

NODE_ID = "Pusher"


class MonitoredPusherSpec(standard_component_specs.PusherSpec):
    INPUTS = {**standard_component_specs.PusherSpec.INPUTS,
              executor.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema, optional=True),
              executor.STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True)}


class MonitoredPusher(base_component.BaseComponent):
    SPEC_CLASS = MonitoredPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.AtomicPusherExecutor)

    def __init__(self, *, model, model_blessing, infra_blessing, schema, statistics, push_destination,
                 custom_config: dict):
        super().__init__(spec=MonitoredPusherSpec(
            model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
            schema=schema, statistics=statistics, push_destination=push_destination,
            custom_config=json_utils.dumps(custom_config),
            pushed_model=types.Channel(type=standard_artifacts.PushedModel)))


def build(config, trainer, evaluator, infra_validator, statistics_gen, schema_gen) -> MonitoredPusher:
    return MonitoredPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        # The Trainer's schema and the statistics of the data it trained on.
        schema=schema_gen.outputs["schema"],
        statistics=statistics_gen.outputs["statistics"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(config.serving_dir))),
        # Column roles travel with the version: the monitor leaves identifiers, dates and
        # free text out of its verdict (new data has new ids and later dates by nature).
        custom_config={"label": config.label, "task": config.task,
                       "column_roles": config.column_roles or {}},
    ).with_id(NODE_ID)
