"""The built-in Trainer's sizing rules and its example count, on real TFRecord files."""
from __future__ import annotations

import tensorflow as tf

from kubetfx.components.trainer import model


def test_batch_size_grows_with_the_data_within_bounds():
    assert model.batch_size_for(200) == 32
    assert model.batch_size_for(10_000) == 64
    assert model.batch_size_for(100_000) == 512
    assert model.batch_size_for(10_000_000) == 1024
    sizes = [model.batch_size_for(n) for n in (10, 1_000, 50_000, 500_000, 5_000_000)]
    assert sizes == sorted(sizes)


def test_learning_rate_follows_the_batch_and_is_capped():
    assert model.learning_rate_for(32) == 0.01
    assert model.learning_rate_for(128) == 0.02
    assert model.learning_rate_for(1024) == 0.03


def test_count_examples_reads_every_record_of_every_file(tmp_path):
    example = tf.train.Example().SerializeToString()
    for index, count in enumerate((3, 5)):
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(str(tmp_path / f"part-{index}.gz"), options) as writer:
            for _ in range(count):
                writer.write(example)
    assert model.count_examples(str(tmp_path / "part-*")) == 8
    assert model.count_examples([str(tmp_path / "part-0.gz")]) == 3
