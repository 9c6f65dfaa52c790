"""ExampleGen: CSV file or folder -> tf.Example TFRecords split 2:1 into train and eval."""
from __future__ import annotations

from tfx import v1 as tfx

from kubetfx.components.example_gen import csv_input


def build(config) -> tfx.components.CsvExampleGen:
    folder = csv_input.csv_files(config.data)[0].parent
    return tfx.components.CsvExampleGen(input_base=str(folder))
