"""Pusher: copies a model blessed by Evaluator AND InfraValidator to a versioned directory."""
from tfx.dsl.components.base import executor_spec

from kubetfx.components import tfx_api as tfx
from kubetfx.components.pusher import executor


def build(config, trainer, evaluator, infra_validator) -> tfx.components.Pusher:
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(config.serving_dir))),
    )
    pusher.executor_spec = executor_spec.ExecutorClassSpec(executor.AtomicPusherExecutor)
    return pusher
