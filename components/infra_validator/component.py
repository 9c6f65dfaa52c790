"""InfraValidator: the candidate model must load in a real model server and answer canary
requests built from real examples before it may be pushed.

Its own component class (same spec as TFX's) because TFX's Kubeflow V2 compiler refuses
to compile `tfx.components.InfraValidator`; the executor is ours (see executor.py)."""
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.standard_component_specs import InfraValidatorSpec

from kubetfx.components import tfx_api as tfx
from kubetfx.components.infra_validator import executor


class InfraValidator(base_component.BaseComponent):
    SPEC_CLASS = InfraValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model, examples, serving_spec, validation_spec, request_spec):
        super().__init__(spec=InfraValidatorSpec(
            model=model, examples=examples,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing),
            serving_spec=serving_spec, validation_spec=validation_spec, request_spec=request_spec))


def build(config, trainer, example_gen) -> InfraValidator:
    return InfraValidator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        # The serving spec names TF Serving, the server that answers in production; the
        # executor starts kubetfx's model server, which speaks the same REST API.
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
