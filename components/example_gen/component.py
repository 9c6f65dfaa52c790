"""ExampleGen: CSV file or folder -> tf.Example TFRecords split 4:1:1 into train, eval and
a held-out test split (executor.DEFAULT_SPLITS)."""
from __future__ import annotations

from tfx.dsl.components.base import executor_spec

from kubetfx.components import tfx_api as tfx
from kubetfx.components.example_gen import csv_input, executor


def output_config():
    return tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
        tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets) for name, buckets in executor.DEFAULT_SPLITS]))


def build(config) -> tfx.components.CsvExampleGen:
    data = csv_input.Path(config.data)
    if data.is_file():
        input_base, pattern = str(data.parent), data.name
    else:  # a local folder, or a location only the cluster sees (checked by the stage there)
        input_base, pattern = str(data), "*.csv"
    component = tfx.components.CsvExampleGen(
        input_base=input_base,
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=pattern)]),
        output_config=output_config())
    # Same component, same artifact; the Arrow + C++ executor (see executor.py).
    component.executor_spec = executor_spec.BeamExecutorSpec(executor.Executor)
    return component
