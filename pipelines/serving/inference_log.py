"""The inference log: every answered predict request as one tf.Example per instance — the
request's features that the served version's schema names (nothing else a client sent),
plus `prediction` (the model's output), `model_version`, `timestamp_ms` (Unix
milliseconds), `request_id` (the X-Request-Id answered to the caller) and `track`
("stable" or "candidate", the X-Model-Track of a staged rollout; absent in logs written
before tracks existed, and from writers that know none) and `latency_ms` (arrival to
answer, what the rollout's latency budget judges) and `status_code` (200, or the status of
a model call that failed: its error budget; such a record has no prediction) — in uncompressed
TFRecord shards that TFDV reads directly and `kubetfx monitor --logs` compares with the
served model's training data.

Bounds that hold for every record, whatever the request:
- a shard never exceeds `max_shard_bytes`: a record that would overflow the open shard
  closes it first, so a request of many instances is split across shards (each instance is
  its own tf.Example, tied to the others by its request id); one instance larger than a
  whole shard is dropped, counted in `dropped` and warned about (an 8 MiB row is not a
  feature vector the monitor can use, and the bound is what the shipper and readers size for);
- the directory never exceeds `max_total_bytes` nor `max_shards` closed shards: the oldest
  closed shards (by their last write) are deleted first, and each open shard is counted at
  its full size so that writers filling theirs cannot push the total past the bound.
Several writers (`kubetfx serve` processes, proxies) share a directory safely: each writes
its own shard, named with its pid and a random suffix and ending in `.open` while written,
held under an exclusive flock and renamed to `.tfrecord` on close. Retention deletes only
closed shards; an `.open` shard whose lock nobody holds (its writer died) is closed by the
next writer that rotates. A write that fails (disk full, the folder unwritable or removed)
never fails the request: the shard is let go of as it is (its torn last record is skipped
by readers; writing on after it would hide every later record from them), the instances
are counted in `lost` with a warning at 1, 2, 4, ... of them, and a new shard (the folder
made again) is tried after `retry_seconds`; an open shard deleted under its writer is let go
of at the next request. Readers read the closed shards and the open ones up to their last
complete record (each record is flushed when its request is logged)."""
from __future__ import annotations

import collections
import datetime
import fcntl
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Callable, Collection, Optional

import numpy as np

from kubetfx.components.serving import failure_reports

log = logging.getLogger("kubetfx.inference_log")
SHARD_SUFFIX = ".tfrecord"
OPEN_SUFFIX = ".open"           # appended to SHARD_SUFFIX while a writer holds the shard
FRAMING_BYTES = 16              # TFRecord framing of one record: length, two CRCs
DEFAULT_MAX_SHARD_BYTES = 8 << 20
DEFAULT_MAX_TOTAL_BYTES = 1 << 30
# The version's schema features, None when the version has none that reads: then no request
# feature is logged (a field is logged because the schema names it, never by default).
SchemaFeatures = Callable[[int], Optional[Collection[str]]]


def log_dir(config) -> Path:
    return config.home_path / "inference-logs" / config.name


class ServingSchemas:
    """SchemaFeatures of a serving directory: the feature names of
    `<serving_dir>/<version>/assets.extra/kubetfx/schema.pbtxt` (the Pusher's training
    summary), read once per version; a version directory is published whole, so its
    schema does not change under a cached answer."""

    def __init__(self, serving_dir, keep: int = 8):
        self.serving_dir, self.keep = str(serving_dir), keep
        self._cache: collections.OrderedDict[int, frozenset | None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, version: int) -> frozenset | None:
        with self._lock:
            if version in self._cache:
                return self._cache[version]
        names = self._read(version)
        with self._lock:
            self._cache[version] = names
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return names

    def _read(self, version: int) -> frozenset | None:
        from kubetfx.components.serving import request_schema

        try:
            schema = request_schema.summary_schema(os.path.join(self.serving_dir, str(version)))
        except ValueError as err:
            schema, why = None, err
        else:
            why = "no schema.pbtxt beside it"
        if schema is None:
            log.warning("version %d has no readable schema (%s): its requests are logged without features", version, why)
            return None
        return frozenset(f.name for f in schema.feature)


def _add(feature, values) -> None:
    array = np.asarray(values).reshape(-1)
    if array.dtype.kind in "SUO":
        feature.bytes_list.value.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.tolist())
    elif array.dtype.kind in "iub":
        feature.int64_list.value.extend(int(v) for v in array.tolist())
    else:
        feature.float_list.value.extend(float(v) for v in array.tolist())


def to_examples(record, features: Collection[str] | None) -> list[bytes]:
    """Serialized tf.Examples for one InferenceRecord (components/infra_validator/
    model_server.py), keeping only the request features named in `features`."""
    from tensorflow.core.example import example_pb2

    from kubetfx.components.serving import rest_api

    keep = frozenset(features or ())
    examples = []
    for i, instance in enumerate(record.instances):
        example = example_pb2.Example()
        if isinstance(instance, bytes):
            example.ParseFromString(instance)
            for name in [n for n in example.features.feature if n not in keep]:
                del example.features.feature[name]
        else:  # a signature fed tensors: their values as features (filtered before parsing them)
            example.ParseFromString(rest_api.example_from_features(
                {k: v for k, v in instance.items() if k in keep}, {}))
        out = example.features.feature
        for name, values in record.outputs.items():
            _add(out["prediction" if len(record.outputs) == 1 else f"prediction_{name}"], values[i])
        out["model_version"].int64_list.value.append(int(record.model_version))
        # int64 milliseconds: a float feature is 32-bit, which rounds Unix seconds to ~2 min.
        out["timestamp_ms"].int64_list.value.append(int(round(record.timestamp * 1000)))
        if getattr(record, "request_id", ""):
            out["request_id"].bytes_list.value.append(record.request_id.encode())
        if getattr(record, "track", ""):
            out["track"].bytes_list.value.append(record.track.encode())
        if getattr(record, "latency_ms", 0.0) > 0:
            out["latency_ms"].float_list.value.append(record.latency_ms)
        out["status_code"].int64_list.value.append(int(getattr(record, "status_code", 200)))
        examples.append(example.SerializeToString())
    return examples


class InferenceLog:
    """An on_request hook (ModelServer, LoggingProxy) that writes the inference log.

    features: the served version's schema features (ServingSchemas), None: none logged."""

    def __init__(self, directory, *, features: SchemaFeatures | None, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
                 max_shard_seconds: float = 3600, max_shards: int = 16, max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
                 retry_seconds: float = 1.0):
        if max_shards < 1 or max_shard_bytes <= FRAMING_BYTES or max_shard_seconds <= 0:
            raise ValueError("inference log limits must be positive (a shard larger than a record's framing)")
        if max_total_bytes < max_shard_bytes:
            raise ValueError(f"the log's total bound ({max_total_bytes} bytes) is below one shard ({max_shard_bytes})")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.features = features
        self.max_shard_bytes, self.max_shard_seconds = max_shard_bytes, max_shard_seconds
        self.max_shards, self.max_total_bytes = max_shards, max_total_bytes
        self._dropped = failure_reports.DoublingReport()  # instances larger than a shard, not logged
        self._lost = failure_reports.DoublingReport()  # not logged because a write failed (disk full, ...)
        self.retry_seconds = retry_seconds  # after a failed write, a new shard is tried no sooner
        self._retry_at = 0.0
        self._last_error = ""
        self._lock = threading.Lock()
        self._writer = None
        self._lock_fd: int | None = None
        self._path: Path | None = None
        self._opened = 0.0
        self._bytes = 0

    @property
    def dropped(self) -> int:
        return self._dropped.total

    @property
    def lost(self) -> int:
        return self._lost.total

    def __call__(self, record) -> None:
        examples = to_examples(record, self.features(record.model_version) if self.features else None)
        with self._lock:
            if self._path is not None and not self._path.exists():
                # deleted or moved under this writer (a clean-up of the log folder): writing on
                # would fill an unlinked file, every later record lost without a word
                self._abandon(f"open shard {self._path.name} is gone")
            written = 0
            for example in examples:
                size = len(example) + FRAMING_BYTES
                if size > self.max_shard_bytes:
                    if self._dropped.count():  # 1, 2, 4, ...: seen, not a flood
                        log.warning("an instance of request %s is %d bytes, over the %d-byte shard bound: not logged "
                                    "(%d so far)", getattr(record, "request_id", "") or "-", size,
                                    self.max_shard_bytes, self.dropped)
                    continue
                if self._writer is None and time.monotonic() < self._retry_at:
                    self._lose(1, None)
                    continue
                try:
                    if self._writer is None or self._bytes + size > self.max_shard_bytes or \
                            time.monotonic() - self._opened >= self.max_shard_seconds:
                        self._rotate()
                        written = 0  # what this call wrote before is closed in the previous shard
                    self._writer.write(example)
                except Exception as err:  # noqa: BLE001 - OSError, tf.errors.OpError: disk full, folder unwritable
                    self._fail(written + 1, err)
                    written = 0
                    continue
                self._bytes += size
                written += 1
            if self._writer is not None:
                try:
                    self._writer.flush()
                except Exception as err:  # noqa: BLE001 - as above: what this call wrote is not on disk
                    self._fail(written, err)

    def _fail(self, records: int, err: Exception) -> None:
        """A write failed: the shard may end in a torn record, after which readers stop, so it
        is closed as it is and the next record opens a new one (not before retry_seconds)."""
        self._retry_at = time.monotonic() + self.retry_seconds
        self._abandon(None)
        self._lose(records, err)

    def _lose(self, records: int, err: Exception | None) -> None:
        if err is not None:
            self._last_error = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        if self._lost.count(records):  # 1, 2, 4, ...: no flood
            log.warning("inference log %s cannot be written (%s): %d records not logged so far; a new shard is "
                        "tried every %g s", self.directory, self._last_error, self.lost, self.retry_seconds)

    def _abandon(self, why: str | None) -> None:
        """Lets go of the open shard, whatever state its file is in (closed name if it still exists)."""
        if why:
            log.warning("inference log: %s; opening a new shard", why)
        writer, path, fd = self._writer, self._path, self._lock_fd
        self._writer, self._path, self._lock_fd = None, None, None
        for step in (lambda: writer.close() if writer is not None else None,
                     lambda: os.rename(path, path.with_name(path.name[:-len(OPEN_SUFFIX)])) if path else None,
                     lambda: os.close(fd) if fd is not None else None):
            try:
                step()
            except Exception:  # noqa: BLE001 - the shard is let go of either way
                pass

    def _rotate(self) -> None:
        import tensorflow as tf

        self._close()
        self.directory.mkdir(parents=True, exist_ok=True)  # removed under a running server: made again
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"requests-{stamp}-{os.getpid()}-{secrets.token_hex(4)}{SHARD_SUFFIX}"
        # Locked before it gets the name other writers look at, so no one takes it for an orphan.
        creating = self.directory / f".{name}.creating"
        fd = os.open(creating, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path = self.directory / (name + OPEN_SUFFIX)
            os.rename(creating, path)
        except BaseException:
            os.close(fd)
            creating.unlink(missing_ok=True)
            raise
        self._path, self._lock_fd = path, fd
        self._writer = tf.io.TFRecordWriter(str(self._path))
        self._opened, self._bytes = time.monotonic(), 0
        self._retain()

    def _close(self) -> None:
        if self._writer is None:
            return
        writer, path, fd = self._writer, self._path, self._lock_fd
        self._writer, self._path, self._lock_fd = None, None, None
        try:
            writer.close()
            os.rename(path, path.with_name(path.name[:-len(OPEN_SUFFIX)]))
        finally:
            os.close(fd)

    def _retain(self) -> None:
        """Closes dead writers' shards, then deletes the oldest closed shards while the
        directory is over its bounds (under a directory lock: writers prune one at a time)."""
        try:
            guard = os.open(self.directory / ".retention.lock", os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as err:  # the shard is open and written; pruning waits for the next rotation
            log.warning("inference log %s: retention skipped: %s", self.directory, err)
            return
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            reserved = 0
            for shard in open_shards(self.directory):
                if shard != self._path and _close_orphan(shard):
                    continue
                reserved += max(self.max_shard_bytes, _size(shard))
            closed = sorted(((s, os.stat(s)) for s in closed_shards(self.directory) if s.exists()),
                            key=lambda item: (item[1].st_mtime_ns, item[0].name))
            total = reserved + sum(st.st_size for _, st in closed)
            while closed and (total > self.max_total_bytes or len(closed) > self.max_shards):
                shard, st = closed.pop(0)
                shard.unlink(missing_ok=True)
                total -= st.st_size
        except FileNotFoundError:  # a shard shipped or pruned meanwhile: the next rotation counts again
            pass
        except OSError as err:
            log.warning("inference log %s: retention skipped: %s", self.directory, err)
        finally:
            os.close(guard)

    def close(self) -> None:
        """Closes the open shard (renamed to .tfrecord); never raises: a shard that cannot be
        closed (its folder gone, the disk full) is let go of and said once."""
        with self._lock:
            if self._writer is not None:
                try:
                    self._close()
                    self._retain()
                except Exception as err:  # noqa: BLE001 - shutting down: said, not raised
                    self._abandon(f"closing the open shard failed ({type(err).__name__}: {err})")

    def closed_shards(self, max_age_seconds: float | None = None) -> list[Path]:
        """Shards no writer holds, oldest first. With max_age_seconds, this writer's open
        shard is closed first when it is that old (a quiet server's last requests are shipped too)."""
        with self._lock:
            if self._writer is not None and max_age_seconds is not None and \
                    time.monotonic() - self._opened >= max_age_seconds:
                try:
                    self._close()
                except Exception as err:  # noqa: BLE001 - as in close()
                    self._abandon(f"closing the open shard failed ({type(err).__name__}: {err})")
        return closed_shards(self.directory)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _close_orphan(shard: Path) -> bool:
    """Renames an open shard whose writer is gone (nobody holds its lock) to a closed one."""
    try:
        fd = os.open(shard, os.O_RDONLY)
    except FileNotFoundError:
        return True  # closed by its writer meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        os.rename(shard, shard.with_name(shard.name[:-len(OPEN_SUFFIX)]))
        log.warning("closed %s, left open by a writer that is gone", shard.name)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)
    return True


def closed_shards(directory) -> list[Path]:
    """Closed shards, oldest first (their names start with the UTC time they were opened)."""
    path = Path(directory)
    return sorted(path.glob(f"*{SHARD_SUFFIX}"), key=lambda p: p.name) if path.is_dir() else []


def open_shards(directory) -> list[Path]:
    """Shards being written (or left by a writer that died), oldest first."""
    path = Path(directory)
    return sorted(path.glob(f"*{SHARD_SUFFIX}{OPEN_SUFFIX}"), key=lambda p: p.name) if path.is_dir() else []


def shards(directory) -> list[Path]:
    """Every shard a reader finds, closed and open, oldest first."""
    return sorted(closed_shards(directory) + open_shards(directory), key=lambda p: p.name.removesuffix(OPEN_SUFFIX))


def read_examples(directory):
    """Serialized tf.Examples of every shard, closed and open, oldest first; a torn tail
    record (a shard being written, or cut short by a crash) is skipped, and a shard closed
    or deleted while this reads is read under its new name or skipped."""
    for shard in shards(directory):
        yield from read_shard(shard)


def read_shard(shard: Path):
    """Serialized tf.Examples of one shard as read_examples() reads each."""
    import tensorflow as tf

    candidates = [shard]
    if shard.name.endswith(OPEN_SUFFIX):  # closed since it was listed: its new name
        candidates.append(shard.with_name(shard.name[:-len(OPEN_SUFFIX)]))
    for candidate in candidates:
        try:
            iterator = iter(tf.data.TFRecordDataset(str(candidate)))
            first = next(iterator).numpy()
        except tf.errors.NotFoundError:  # renamed or deleted before it was opened
            continue
        except (StopIteration, tf.errors.DataLossError):
            return
        yield first
        while True:  # the file is open now: a rename or unlink does not cut it short
            try:
                yield next(iterator).numpy()
            except (StopIteration, tf.errors.DataLossError):  # the end, or a torn last record
                return
