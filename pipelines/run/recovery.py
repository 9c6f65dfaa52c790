"""Leftovers of a run that was killed (SIGKILL, OOM, power loss), cleaned before the next.

Called under the pipeline's run lock, so anything still marked RUNNING belongs to a dead
process: it is marked CANCELED (never reused: TFX's cache only takes COMPLETE and CACHED
executions), and staging copies of an interrupted push are removed."""
from __future__ import annotations

import shutil
from pathlib import Path

from absl import logging
from ml_metadata.proto import metadata_store_pb2

from kubetfx.components.pusher.executor import STAGING_PREFIX
from kubetfx.pipelines.record import mlmd

_UNFINISHED = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)


def cancel_orphaned_executions(metadata_path: Path, pipeline_name: str) -> int:
    if not metadata_path.exists():
        return 0
    store = mlmd.open_store(metadata_path, writable=True)
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return 0
    orphans = [e for e in store.get_executions_by_context(pipeline.id) if e.last_known_state in _UNFINISHED]
    for execution in orphans:
        execution.last_known_state = metadata_store_pb2.Execution.CANCELED
    if orphans:
        store.put_executions(orphans)
        logging.warning("Marked %d executions of a killed run as CANCELED.", len(orphans))
    return len(orphans)


def remove_staging_copies(serving_dir: Path) -> int:
    staged = list(serving_dir.glob(STAGING_PREFIX + "*")) if serving_dir.exists() else []
    for path in staged:
        shutil.rmtree(path, ignore_errors=True)
    return len(staged)


def recover(config) -> None:
    cancel_orphaned_executions(config.metadata_path, config.name)
    remove_staging_copies(config.serving_dir)
