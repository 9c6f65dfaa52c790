"""ExampleGen: CSV file or folder -> tf.Example TFRecords split 2:1 into train and eval."""
from __future__ import annotations

from tfx import v1 as tfx

from kubetfx.components.example_gen import csv_input


def build(config) -> tfx.components.CsvExampleGen:
    files = csv_input.csv_files(config.data)
    pattern = files[0].name if len(files) == 1 and not csv_input.Path(config.data).is_dir() else "*.csv"
    return tfx.components.CsvExampleGen(
        input_base=str(files[0].parent),
        input_config=tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=pattern)]))
