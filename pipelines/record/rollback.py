"""Serving an earlier blessed version again, atomically, and recording that it happened.

TF Serving serves the highest integer version under the base path, and deleting newer
versions would lose them (and race a server that is loading one), so a rollback
re-publishes the earlier version's files under a new highest number, the way the Pusher
publishes (`components/pusher/serving_dir.py` publish: a staging copy beside the
versions, then one rename). The server switches to it on its next poll, like any push.
Recorded twice: a `kubetfx.Rollback` execution in ML Metadata (input: the earlier
PushedModel and its Model; output: the new PushedModel), and a line in the serving
directory's `rollbacks.jsonl`, which travels with the models to where no local metadata is."""
from __future__ import annotations

import dataclasses
import datetime
import getpass
import json
import os
import shutil
from pathlib import Path

from kubetfx.pipelines.record import mlmd
from kubetfx.pipelines.config import ConfigError, PipelineConfig
from kubetfx.pipelines.record import metadata_writes, pushed_models


@dataclasses.dataclass
class RollbackResult:
    rolled_back_to: str      # the earlier version whose content is now served
    new_version: str         # the version number it is served under
    previous_served: str
    path: str
    already_served: bool = False


def _choose(records: list, version: str, config: PipelineConfig) -> pushed_models.PushedVersion:
    target = pushed_models.find(records, version)
    known = ", ".join(r.version for r in records) or "none"
    if target is None:
        from kubetfx.pipelines.record import home_pipelines

        raise ConfigError(f"version {version} is not in the serving directory of pipeline {config.name} "
                          f"({config.serving_dir}); pushed versions: {known}; "
                          f"{home_pipelines.listing(config.home_path)}")
    if not target.recorded:
        raise ConfigError(f"version {version} has no push record in ML Metadata (not pushed by this "
                          "home's pipeline), so its blessings cannot be checked; refusing to serve it")
    if target.blessed is False or target.infra_blessed is False:
        raise ConfigError(f"version {version} was not blessed by Evaluator and InfraValidator")
    return target


def _append_history(serving_dir: Path, entry: dict) -> None:
    with open(serving_dir / pushed_models.HISTORY_FILE, "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rollback(config: PipelineConfig, version: str) -> RollbackResult:
    """Raises ConfigError (a user can fix it) for an unknown or unblessed version."""
    from kubetfx.pipelines.record.home_lock import exclusive_run

    serving_dir = config.serving_dir
    with exclusive_run(config):  # a push of a running pipeline must not interleave with this
        records = pushed_models.pushed_versions(config.metadata_path, config.name, serving_dir,
                                                with_metrics=False)
        target = _choose(records, version, config)
        served = next(r for r in records if r.serving)
        if target.serving:
            return RollbackResult(target.version, target.version, served.version, target.path, True)
        path, new_version, pushed = _publish(target.path, Path(serving_dir))
        if not pushed:  # the served files are already this model's
            return RollbackResult(target.version, new_version, served.version, path, True)
        origin = target.rollback_of or target.version  # a rollback of a rollback names the push
        history = Path(serving_dir) / pushed_models.HISTORY_FILE
        history_size = history.stat().st_size if history.exists() else None
        try:
            _append_history(serving_dir, {
                "version": new_version, "rollback_of": origin, "previous_served": served.version,
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "user": getpass.getuser()})
            _record(config, target, served, path, new_version, origin)
        except BaseException:
            # Unrecorded, the new version would be served without a record of where it came
            # from: it goes (a copy of an earlier version: nothing is lost), and so does its line.
            shutil.rmtree(path, ignore_errors=True)
            _truncate(history, history_size)
            raise
        return RollbackResult(origin, new_version, served.version, path)


def _publish(model_path: str, serving_dir: Path) -> tuple:
    """serving_dir.publish, leaving no staging copy behind when it fails (a full disk)."""
    from kubetfx.components.pusher import serving_dir as serving_layout

    def staging() -> set:
        return {p for p in os.listdir(serving_dir) if p.startswith(serving_layout.STAGING_PREFIX)}

    before = staging()
    try:
        return serving_layout.publish(model_path, str(serving_dir))
    except BaseException as err:
        for name in staging() - before:
            shutil.rmtree(serving_dir / name, ignore_errors=True)
        from kubetfx.pipelines.record import home_errors

        as_os_error = home_errors.from_tensorflow(err)  # a full disk met by tf.io.gfile's copy
        if as_os_error is not None:
            raise as_os_error from None
        raise


def _truncate(path: Path, size) -> None:
    try:
        if size is None:
            path.unlink(missing_ok=True)
        else:
            os.truncate(path, size)
    except OSError:
        pass  # the line of a version that is gone is skipped by readers (pushed_models._history)


def _record(config, target, served, path: str, new_version: str, origin: str) -> None:
    try:
        _write_record(config, target, served, path, new_version, origin)
    except Exception as err:  # a full disk or a read-only store met by the write: one line
        if not mlmd.unusable_store(err):
            raise
        raise mlmd.explain(config.metadata_path, err) from None


def _write_record(config, target, served, path: str, new_version: str, origin: str) -> None:
    store = mlmd.open_store(config.metadata_path, writable=True)
    earlier = store.get_artifacts_by_id([target.pushed_model_id])[0]
    model = store.get_artifacts_by_id([target.model_id])[0] if target.model_id else None
    pushed = metadata_writes.new_artifact(store, "PushedModel", path, custom_properties={
        "pushed": 1, "pushed_destination": path, "pushed_version": new_version, "rollback_of": origin})
    metadata_writes.record_execution(
        store, config.name, pushed_models.ROLLBACK_EXECUTION,
        {"rollback_of": origin, "version": new_version, "previous_served": served.version},
        inputs={"pushed_model": earlier, "model": model}, outputs={"pushed_model": pushed})
