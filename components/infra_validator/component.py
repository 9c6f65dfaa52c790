"""InfraValidator: the candidate model must load in a real model server and answer canary
requests built from real examples before it may be pushed."""
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from kubetfx.components.infra_validator import executor


def build(config, trainer, example_gen) -> tfx.components.InfraValidator:
    validator = tfx.components.InfraValidator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        # The serving spec names TF Serving, the server that answers in production; the
        # executor uses its binary when present, else the KServe model server (same REST API).
        serving_spec=tfx.proto.ServingSpec(
            tensorflow_serving=tfx.proto.TensorFlowServing(tags=["2.16.1"]),
            local_docker=tfx.proto.LocalDockerConfig(),
        ),
        validation_spec=tfx.proto.ValidationSpec(max_loading_time_seconds=120, num_tries=2),
        request_spec=tfx.proto.RequestSpec(
            tensorflow_serving=tfx.proto.TensorFlowServingRequestSpec(signature_names=["serving_default"]),
            num_examples=config.infra_validation_examples,
        ),
    )
    validator.executor_spec = executor_spec.ExecutorClassSpec(executor.Executor)
    return validator
