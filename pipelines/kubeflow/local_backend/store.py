"""The object store of a run: a real S3-protocol server on loopback for the run's duration
(object_store_server), and what it holds kept across runs, as a cluster's MinIO keeps it.

moto keeps objects in memory, so every object the backend writes is also mirrored to
`<home>/object-store/<bucket>/<key>`. A later run puts back only what it reads from earlier
runs (a cached task's outputs, the data root) when it needs them: uploading the whole
history at every start made each run slower and the server larger than the one before.
"""
from __future__ import annotations

import contextlib
import shutil
import threading
from pathlib import Path
from typing import Iterator, Optional

from kubetfx.pipelines.kubeflow import object_store, object_store_server


class Store:
    def __init__(self, s3, mirror_root: Path):
        self.s3, self.mirror_root = s3, mirror_root

    def mirror_path(self, uri: str) -> Path:
        where = object_store.parse_uri(uri)
        return self.mirror_root / where.bucket / where.key

    def mirror(self, local: Path, uri: str) -> None:
        target = self.mirror_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(local, target)

    def ensure_bucket(self, uri: str) -> None:
        bucket = object_store.parse_uri(uri).bucket
        existing = {b["Name"] for b in self.s3.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            self.s3.create_bucket(Bucket=bucket)

    def restore(self, uri: str) -> bool:
        """Puts the mirror's copy of `uri` (an object or a prefix) back into the store;
        False when the mirror no longer has it (deleted by hand: the task runs again)."""
        local = self.mirror_path(uri)
        if not local.exists():
            return False
        self.ensure_bucket(uri)
        if local.is_file():
            where = object_store.parse_uri(uri)
            self.s3.upload_file(str(local), where.bucket, where.key)
        else:
            object_store.upload_tree(self.s3, local, uri)
        return True

    def sync_data(self, local: Path, uri: str) -> str:
        """Uploads a CSV file or folder to `uri` (a prefix), removing objects that are no
        longer there (as `kubetfx submit` leaves the data root); returns its fingerprint."""
        self.restore(uri)  # what the previous run left there, to remove what is gone
        self.ensure_bucket(uri)
        where = object_store.parse_uri(uri)
        wanted = {local.name} if local.is_file() else {p.relative_to(local).as_posix()
                                                        for p in local.rglob("*") if p.is_file()}
        for entry in list(object_store.list_objects(self.s3, uri)):
            relative = entry["Key"][len(where.key):].lstrip("/")
            if relative not in wanted:
                self.s3.delete_object(Bucket=where.bucket, Key=entry["Key"])
                self.mirror_path(f"minio://{where.bucket}/{entry['Key']}").unlink(missing_ok=True)
        object_store.upload_tree(self.s3, local, uri)
        self.mirror(local if local.is_dir() else local, uri if local.is_dir() else f"{uri.rstrip('/')}/{local.name}")
        return object_store.data_fingerprint(self.s3, uri)


@contextlib.contextmanager
def running(mirror_root: Path, log: Path) -> Iterator[Store]:
    mirror_root.mkdir(parents=True, exist_ok=True)
    with object_store_server.running(log=log) as server:
        s3 = object_store.client(server.endpoint, server.access_key, server.secret_key)
        yield Store(s3, mirror_root)


class Booting:
    """The store's server started ahead of the run that uses it: `kubetfx run --engine
    containers` compiles the spec first (TFX's imports and the pipeline's build, seconds),
    and the server is a separate process whose own start takes seconds too, so it boots
    meanwhile instead of after. A cluster's MinIO is up before any run: nothing of what a
    task sees changes. `running()` waits for it (bounded by the server's start timeout);
    `close()` stops it."""

    def __init__(self, mirror_root: Path, log: Path):
        self.mirror_root = mirror_root
        self._stack = contextlib.ExitStack()
        self._server: Optional[object_store_server.RunningStore] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._start, args=(log,), name="object-store-boot", daemon=True)
        self._thread.start()

    def _start(self, log: Path) -> None:
        try:
            self._server = self._stack.enter_context(object_store_server.running(log=log))
        except BaseException as err:  # noqa: BLE001 — raised again where the run needs the store
            self._error = err

    def _joined(self) -> None:
        self._thread.join(object_store_server.START_TIMEOUT_SECONDS + 30)

    @contextlib.contextmanager
    def running(self) -> Iterator[Store]:
        self._joined()
        if self._error is not None:
            raise self._error
        if self._server is None:
            raise object_store_server.ObjectStoreUnavailable("the object-store server did not start in time")
        self.mirror_root.mkdir(parents=True, exist_ok=True)
        yield Store(object_store.client(self._server.endpoint, self._server.access_key, self._server.secret_key),
                    self.mirror_root)

    def close(self) -> None:
        self._joined()
        self._stack.close()
