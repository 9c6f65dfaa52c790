"""Fixtures of the model server and InfraValidator tests."""
from __future__ import annotations

import pytest

from testing_models import example


@pytest.fixture
def examples_dir(tmp_path):
    """An Examples artifact directory with a GZIP TFRecord eval split of x = 1, 2, 3, 4."""
    import tensorflow as tf

    split = tmp_path / "examples" / "Split-eval"
    split.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(split / "data_tfrecord-00000-of-00001.gz"), options="GZIP") as writer:
        for v in (1.0, 2.0, 3.0, 4.0):
            writer.write(example(v))
    return tmp_path / "examples"
