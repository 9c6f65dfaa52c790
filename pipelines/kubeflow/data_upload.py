"""The data a cluster run reads: local CSV files copied to the run's `data_root` in the
object store, and its fingerprint as the store sees it (printed by submit; the run takes its
own when it starts, the one ExampleGen's cache key reads: see data_import.py).

The upload never deletes anything in the user's store. When `data_root` holds files the
local data does not have, ExampleGen would read them too: that is refused with the list,
rather than silently training on a mix."""
from __future__ import annotations

from pathlib import Path

from kubetfx.pipelines.kubeflow import object_store

ENDPOINT_ENV = "KUBETFX_OBJECT_STORE_ENDPOINT"


class DataUploadError(RuntimeError):
    """The data cannot be placed where the run reads it; the message says how to fix it."""


def _local_files(data: Path) -> list:
    if data.is_file():
        return [data.name]
    if data.is_dir():
        return sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
    raise DataUploadError(f"data path {data} does not exist")


def upload(s3, data: Path, data_root: str) -> str:
    """Uploads `data` (a CSV file or a folder) under `data_root`; returns its fingerprint."""
    try:
        where = object_store.parse_uri(data_root)
    except object_store.ObjectStoreError as err:
        raise DataUploadError(f"data_root {err}; give an s3:// or minio:// --data-root") from None
    local = set(_local_files(data))
    prefix = where.key + "/" if where.key else ""
    try:
        stored = {e["Key"][len(prefix):] for e in object_store.list_objects(s3, data_root) if not e["Key"].endswith("/")}
        extra = sorted(stored - local)
        if extra:
            shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
            raise DataUploadError(f"{data_root} holds files that are not in {data}: {shown}; ExampleGen would "
                                  "read them too: remove them from the store or choose another --data-root")
        object_store.upload_tree(s3, data, data_root)
        return object_store.data_fingerprint(s3, data_root)
    except DataUploadError:
        raise
    except Exception as err:  # botocore: no such bucket, refused credentials, endpoint down
        raise DataUploadError(f"cannot upload the data to {data_root}: {err}") from None
