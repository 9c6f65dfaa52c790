"""The inference log: every answered predict request as one tf.Example per instance — the
request's own features, plus `prediction` (the model's output), `model_version` and
`timestamp_ms` (Unix milliseconds) — in uncompressed TFRecord shards that TFDV reads directly
(`tfdv.generate_statistics_from_tfrecord(data_location=DIR + "/*.tfrecord")`) and
`kubetfx monitor --logs` compares with the served model's training data.

Bounded on disk: a shard is closed after `max_shard_bytes` or `max_shard_seconds`, and
only the newest `max_shards` are kept (default 8 MiB x 16 = at most 128 MiB, about the
last 200k penguin requests). Each record is flushed when written, so a reader sees the
requests answered so far; a shard cut short by a crash is read up to its last complete
record."""
from __future__ import annotations

import datetime
import os
import threading
import time
from pathlib import Path

import numpy as np

SHARD_SUFFIX = ".tfrecord"


def log_dir(config) -> Path:
    return config.home_path / "inference-logs" / config.name


def _add(feature, values) -> None:
    array = np.asarray(values).reshape(-1)
    if array.dtype.kind in "SUO":
        feature.bytes_list.value.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.tolist())
    elif array.dtype.kind in "iub":
        feature.int64_list.value.extend(int(v) for v in array.tolist())
    else:
        feature.float_list.value.extend(float(v) for v in array.tolist())


def to_examples(record) -> list[bytes]:
    """Serialized tf.Examples for one InferenceRecord (components/infra_validator/model_server.py)."""
    from tensorflow.core.example import example_pb2

    from kubetfx.components.infra_validator import rest_api

    examples = []
    for i, instance in enumerate(record.instances):
        example = example_pb2.Example()
        if isinstance(instance, bytes):
            example.ParseFromString(instance)
        else:  # a signature fed tensors: their values as features
            example.ParseFromString(rest_api.example_from_features(instance, {}))
        features = example.features.feature
        for name, values in record.outputs.items():
            _add(features["prediction" if len(record.outputs) == 1 else f"prediction_{name}"], values[i])
        features["model_version"].int64_list.value.append(int(record.model_version))
        # int64 milliseconds: a float feature is 32-bit, which rounds Unix seconds to ~2 min.
        features["timestamp_ms"].int64_list.value.append(int(round(record.timestamp * 1000)))
        examples.append(example.SerializeToString())
    return examples


class InferenceLog:
    """An on_request hook for ModelServer that writes the inference log."""

    def __init__(self, directory, *, max_shard_bytes: int = 8 << 20, max_shard_seconds: float = 3600,
                 max_shards: int = 16):
        if max_shards < 1 or max_shard_bytes < 1 or max_shard_seconds <= 0:
            raise ValueError("inference log limits must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_shard_bytes, self.max_shard_seconds, self.max_shards = max_shard_bytes, max_shard_seconds, max_shards
        self._lock = threading.Lock()
        self._writer = None
        self._path = None
        self._opened = 0.0
        self._bytes = 0

    def __call__(self, record) -> None:
        examples = to_examples(record)
        with self._lock:
            if self._writer is None or self._bytes >= self.max_shard_bytes or \
                    time.monotonic() - self._opened >= self.max_shard_seconds:
                self._rotate()
            for example in examples:
                self._writer.write(example)
                self._bytes += len(example) + 16  # TFRecord framing: length, two CRCs
            self._writer.flush()

    def _rotate(self) -> None:
        import tensorflow as tf

        self._close()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        self._path = self.directory / f"requests-{stamp}-{os.getpid()}{SHARD_SUFFIX}"
        self._writer = tf.io.TFRecordWriter(str(self._path))
        self._opened, self._bytes = time.monotonic(), 0
        for old in shards(self.directory)[:-self.max_shards]:
            old.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        with self._lock:
            self._close()

    def closed_shards(self, max_age_seconds: float | None = None) -> list[Path]:
        """Shards no writer holds, oldest first. With max_age_seconds, the open shard is
        closed first when it is that old (a quiet server's last requests are shipped too)."""
        with self._lock:
            if self._writer is not None and max_age_seconds is not None and \
                    time.monotonic() - self._opened >= max_age_seconds:
                self._close()
            return [p for p in shards(self.directory) if self._writer is None or p != self._path]


def shards(directory) -> list[Path]:
    """Shards oldest first (their names start with the UTC time they were opened)."""
    path = Path(directory)
    return sorted(path.glob(f"*{SHARD_SUFFIX}"), key=lambda p: p.name) if path.is_dir() else []


def read_examples(directory):
    """Serialized tf.Examples of every shard, oldest first; a torn tail record is skipped."""
    import tensorflow as tf

    for shard in shards(directory):
        iterator = iter(tf.data.TFRecordDataset(str(shard)))
        while True:
            try:
                yield next(iterator).numpy()
            except StopIteration:
                break
            except tf.errors.DataLossError:  # the last record of a shard cut short
                break
