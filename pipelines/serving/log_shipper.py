"""Ships the inference log's closed shards from a local spool folder to the object store,
where `kubetfx monitor --logs minio://...` (the CronJob) reads them.

A shard is uploaded under the prefix as `<its name>-<host>.tfrecord` (its name starts
with the UTC time it was opened, so keys sort by time; the host keeps two replicas of the
proxy apart), then deleted from the spool. The store keeps the newest `store_shards`; an
upload that fails is tried again at the next round, the shard staying in the spool (which
InferenceLog bounds). Only closed shards are shipped, whichever writer of the spool closed
them; one that another shipper took or retention deleted meanwhile is skipped."""
from __future__ import annotations

import logging
import socket
import threading

from kubetfx.pipelines.kubeflow import object_store
from kubetfx.pipelines.serving import inference_log

log = logging.getLogger("kubetfx.log_shipper")


class ShardShipper:

    def __init__(self, log_writer: inference_log.InferenceLog, uri: str, s3, *, interval_seconds: float,
                 max_shard_seconds: float, store_shards: int):
        if interval_seconds <= 0 or store_shards < 1:
            raise ValueError("the shipping interval and the number of shards kept must be positive")
        self.log, self.uri, self.s3 = log_writer, uri.rstrip("/"), s3
        self.where = object_store.parse_uri(self.uri)
        self.interval, self.max_shard_seconds, self.store_shards = interval_seconds, max_shard_seconds, store_shards
        self.host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname()) or "host"
        self.shipped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def key(self, shard) -> str:
        name = f"{shard.stem}-{self.host}{inference_log.SHARD_SUFFIX}"
        return "/".join(filter(None, [self.where.key, name]))

    def ship_once(self, close_open_shard: bool = False) -> int:
        """Uploads every closed shard (the open one too when it is old, or close_open_shard)."""
        count = 0
        for shard in self.log.closed_shards(0 if close_open_shard else self.max_shard_seconds):
            try:
                self.s3.upload_file(str(shard), self.where.bucket, self.key(shard))
            except FileNotFoundError:  # shipped by another writer's shipper, or pruned
                continue
            except Exception as err:  # noqa: BLE001 — botocore: store down; tried again next round
                log.warning("cannot ship %s to %s (kept, tried again): %s", shard.name, self.uri, err)
                return count
            shard.unlink(missing_ok=True)
            count += 1
        self.shipped += count
        if count:
            self._prune()
        return count

    def _prune(self) -> None:
        try:
            keys = sorted(e["Key"] for e in object_store.list_objects(self.s3, self.uri)
                          if e["Key"].endswith(inference_log.SHARD_SUFFIX))
            for key in keys[:-self.store_shards]:
                self.s3.delete_object(Bucket=self.where.bucket, Key=key)
        except Exception as err:  # noqa: BLE001
            log.warning("cannot prune old shards under %s: %s", self.uri, err)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="log-shipper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.ship_once()

    def stop(self) -> int:
        """Stops the thread, closes the open shard and ships what is left; returns the count."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 60)
        self.log.close()
        return self.ship_once(close_open_shard=True)
