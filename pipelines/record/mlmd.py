"""Opening a run's SQLite ML Metadata store (read-only unless asked). A store SQLite cannot
use (a truncated or overwritten file, a read-only one opened to write) is a StoreError: one
line naming the file and what to do, never ML Metadata's RuntimeError with its SQL."""
from __future__ import annotations

from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines.config import ConfigError

# SQLite's words for a file that is not (or no longer) a database (sqlite3.c sqlite3ErrStr).
_DAMAGED = ("malformed", "not a database", "file is encrypted")
# ... and for a store it cannot write now: a full disk (SQLite reports ENOSPC and EFBIG as
# "disk I/O error" or "database or disk is full"), a read-only file or folder.
_UNWRITABLE = ("disk i/o error", "disk is full", "readonly database", "unable to open database")


class StoreError(ConfigError):
    """The metadata store cannot be used as it is; a user can fix it (exit 2)."""


def _sqlite_words(err: Exception) -> str:
    """ML Metadata's "Error when executing query: <sqlite's words> query: <SQL>", cut to the words."""
    text = str(err).split("Error when executing query:", 1)[-1]
    return " ".join(text.split(" query:", 1)[0].split())[:200] or type(err).__name__


def unusable_store(err: BaseException) -> bool:
    """The error (ML Metadata's, raised inside a stage too) says the store's file failed."""
    words = _sqlite_words(err).lower() if "Error when executing query:" in str(err) else ""
    return any(marker in words for marker in _DAMAGED + _UNWRITABLE)


def explain(path, err: Exception) -> StoreError:
    words = _sqlite_words(err)
    if any(marker in words.lower() for marker in _DAMAGED):
        return StoreError(f"metadata store {path} is damaged ({words}): move it aside "
                          f"(mv {path} {path}.damaged) and re-run `kubetfx run`; the pushed models in the "
                          "serving directory are kept")
    return StoreError(f"metadata store {path} cannot be written ({words}): free space on its disk and make "
                      "it and its folder writable for this user (or use another --home), then re-run")


def open_store(path, *, writable: bool = False) -> metadata_store.MetadataStore:
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = str(Path(path))
    if not writable:
        cfg.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(cfg)
    except RuntimeError as err:
        raise explain(path, err) from None
