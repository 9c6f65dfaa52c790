"""Opening a run's SQLite ML Metadata store (read-only unless asked)."""
from __future__ import annotations

from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2


def open_store(path, *, writable: bool = False) -> metadata_store.MetadataStore:
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = str(Path(path))
    if not writable:
        cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(cfg)
