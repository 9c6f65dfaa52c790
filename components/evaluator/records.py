"""The Evaluator's one reader of an Examples split: batches of serialized tf.Examples, as
tf.string tensors, in file order. The metric pass and the acceptance test (executor.py)
and the gate's labelled-row count and labelled-only copy (gate.py) read the eval and test
splits through it, so the three read the same records the same way."""
from __future__ import annotations

import tensorflow as tf

# Rows per batch of the metric pass: large enough that each model signature call and the
# numpy accumulation cost little per row (executor.py).
BATCH = 8192


def batches(files: list, compression: str, size: int = BATCH):
    """At most `size` records a batch; the next two are read while one is used. `compression`
    is TFRecordDataset's ("GZIP" or "")."""
    return tf.data.TFRecordDataset(files, compression_type=compression).batch(size).prefetch(2)
