"""ExampleGen: CSV, Parquet or TFRecord file or folder -> tf.Example TFRecords split 4:1:1
into train, eval and a held-out test split (executor.DEFAULT_SPLITS)."""
from __future__ import annotations

from tfx.components import FileBasedExampleGen, ImportExampleGen
from tfx.dsl.components.base import executor_spec

from kubetfx.components import tfx_api as tfx
from kubetfx.components.example_gen import data_format, executor


def output_config():
    return tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
        tfx.proto.SplitConfig.Split(name=name, hash_buckets=buckets) for name, buckets in executor.DEFAULT_SPLITS]))


def build(config):
    """CsvExampleGen, or for Parquet a FileBasedExampleGen (id ParquetExampleGen) and for
    TFRecords of tf.Examples an ImportExampleGen: each with the one kubetfx executor, which
    reads the format its files are in (data_format.py)."""
    kind = getattr(config, "data_format", None) or data_format.format_of(config.data)
    input_base, pattern = data_format.input_pattern(config.data, kind, getattr(config, "data_pattern", None))
    inputs = dict(input_base=input_base,
                  input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=pattern)]),
                  output_config=output_config())
    if kind == data_format.PARQUET:
        component = FileBasedExampleGen(**inputs).with_id("ParquetExampleGen")
    elif kind == data_format.TFRECORD:
        component = ImportExampleGen(**inputs)
    else:
        component = tfx.components.CsvExampleGen(**inputs)
    # Same component, same artifact; the Arrow + C++ executor (see executor.py).
    component.executor_spec = executor_spec.BeamExecutorSpec(executor.Executor)
    return component
