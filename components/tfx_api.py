"""The part of TFX's v1 API that kubetfx builds its pipeline from, imported from the modules
`tfx.v1` re-exports: the same classes, without `tfx.v1`'s import of its Google Cloud
extensions (google-cloud-aiplatform: 2.3 s on every start here) nor of the stock components
kubetfx does not use (the Tuner, KerasTuner and Keras 3, is imported when `--tune` reads it).
Use it as `from kubetfx.components import tfx_api as tfx`; tfx_api_test.py checks each name
is the object `tfx.v1` gives."""
from types import SimpleNamespace

# Each from its own module: `from tfx.components import ...` would run tfx.components'
# __init__, which imports all sixteen stock components (deferred_imports.py).
from tfx.components.evaluator.component import Evaluator
from tfx.components.example_gen.csv_example_gen.component import CsvExampleGen
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.infra_validator.component import InfraValidator
from tfx.components.pusher.component import Pusher
from tfx.components.schema_gen.component import SchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, infra_validator_pb2, pusher_pb2, trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel


class _Components(SimpleNamespace):
    """The stage classes; the Tuner is imported when first read (only `--tune` reads it)."""

    def __getattr__(self, name):
        if name == "Tuner":
            from tfx.components.tuner.component import Tuner

            return Tuner
        raise AttributeError(name)


components = _Components(
    CsvExampleGen=CsvExampleGen, StatisticsGen=StatisticsGen, SchemaGen=SchemaGen,
    ImportSchemaGen=ImportSchemaGen, ExampleValidator=ExampleValidator, Transform=Transform,
    Trainer=Trainer, Evaluator=Evaluator, InfraValidator=InfraValidator, Pusher=Pusher)
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
