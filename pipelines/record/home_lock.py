"""One run per pipeline and home at a time. The lock guards what a run records (the SQLite
metadata store, the serving directory), so it lives with the record: `run`, `run --engine
containers` and `rollback` all take it before they write."""
from __future__ import annotations

import contextlib
import fcntl
import os

from kubetfx.pipelines.config import PipelineConfig


class RunLockedError(RuntimeError):
    """Another run of the same pipeline holds the home directory."""


@contextlib.contextmanager
def exclusive_run(config: PipelineConfig):
    """One run per pipeline and home at a time: SQLite MLMD and the serving directory are
    shared, so a second run is refused with a clear message instead of racing the first."""
    lock_path = config.home_path / "locks" / f"{config.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise RunLockedError(
                f"pipeline {config.name!r} is already running in {config.home_path} ({holder}); "
                "wait for it, or use another --home") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        yield


def held(config: PipelineConfig) -> bool:
    """Whether a run (or a rollback) of the pipeline holds the home now. A shared lock
    probe that writes nothing: a report reads a stage left "running" by a run that was
    killed (SIGKILL, out of memory, a reboot) as interrupted, not as running."""
    lock_path = config.home_path / "locks" / f"{config.name}.lock"
    try:
        lock = open(lock_path)
    except OSError:  # no lock file: no run ever took it here
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False
