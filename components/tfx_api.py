"""The part of TFX's v1 API that kubetfx builds its pipeline from, imported from the modules
`tfx.v1` re-exports: the same classes, without `tfx.v1`'s import of its Google Cloud
extensions (google-cloud-aiplatform: 2.3 s on every start here). Use it as
`from kubetfx.components import tfx_api as tfx`; tfx_api_test.py checks each name is the
object `tfx.v1` gives."""
from types import SimpleNamespace

from tfx.components import (
    CsvExampleGen, Evaluator, ExampleValidator, InfraValidator, Pusher, SchemaGen, StatisticsGen, Trainer,
    Transform, Tuner,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, infra_validator_pb2, pusher_pb2, trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

components = SimpleNamespace(
    CsvExampleGen=CsvExampleGen, StatisticsGen=StatisticsGen, SchemaGen=SchemaGen,
    ImportSchemaGen=ImportSchemaGen, ExampleValidator=ExampleValidator, Transform=Transform,
    Trainer=Trainer, Tuner=Tuner, Evaluator=Evaluator, InfraValidator=InfraValidator, Pusher=Pusher)
dsl = SimpleNamespace(
    Pipeline=Pipeline, Channel=Channel)
types = SimpleNamespace(standard_artifacts=standard_artifacts)
proto = SimpleNamespace(
    Input=example_gen_pb2.Input, Output=example_gen_pb2.Output, SplitConfig=example_gen_pb2.SplitConfig,
    TrainArgs=trainer_pb2.TrainArgs, EvalArgs=trainer_pb2.EvalArgs,
    ServingSpec=infra_validator_pb2.ServingSpec, TensorFlowServing=infra_validator_pb2.TensorFlowServing,
    LocalDockerConfig=infra_validator_pb2.LocalDockerConfig, ValidationSpec=infra_validator_pb2.ValidationSpec,
    RequestSpec=infra_validator_pb2.RequestSpec,
    TensorFlowServingRequestSpec=infra_validator_pb2.TensorFlowServingRequestSpec,
    PushDestination=pusher_pb2.PushDestination)

__all__ = ["components", "dsl", "proto", "types"]
