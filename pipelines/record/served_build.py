"""What a run is compared with, decided where the pipeline is built: the schema new data is
validated against and the served version the Evaluator compares the candidate with.

A pipeline fed new data (`--data`) infers a schema on its first run; from then on, new data
must match what the served model was trained on, or ExampleValidator stops the run.

Same data, same command, same model: both decisions are exec properties, part of TFX's
cache key (tfx/orchestration/portable/cache_utils.py: node, executor spec, input artifacts,
exec properties). After a push they change (the pushed schema is imported, the new version
is the baseline), so a re-run on the unchanged file missed the cache from SchemaGen on and
pushed a second model. So each run records a key of what its user chose (the config as
given, the data files' names, sizes and modification times, as ExampleGen's fingerprint)
on its pipeline_run context; a run with the key of the run that pushed the model served
now is built with that run's decisions (read back from its executions), and every stage
is a cache hit. Any other run decides afresh."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines.record import mlmd


def _producer_inputs(store, artifact_id: int, event_type) -> list:
    """Input artifacts of the execution that has `artifact_id` as an event of `event_type`."""
    events = [e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == event_type]
    if not events:
        return []
    inputs = [e.artifact_id for e in store.get_events_by_execution_ids([events[-1].execution_id])
              if e.type == metadata_store_pb2.Event.INPUT]
    return store.get_artifacts_by_id(inputs)


def _pushes(metadata_path: str, pipeline_name: str) -> tuple:
    """(store, {artifact type id: name}, the pipeline's PushedModels that pushed); no store
    or no such pipeline: no pushes."""
    if not os.path.exists(metadata_path):
        return None, {}, []
    store = mlmd.open_store(metadata_path)
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return store, {}, []
    types = {t.id: t.name for t in store.get_artifact_types()}
    pushed = [a for a in store.get_artifacts_by_context(pipeline.id) if types[a.type_id] == "PushedModel"
              and a.custom_properties.get("pushed", metadata_store_pb2.Value()).int_value == 1]
    return store, types, pushed


def latest_pushed_schema(metadata_path: str, pipeline_name: str) -> Optional[str]:
    """Path of the schema.pbtxt the latest pushed model of the pipeline was trained with."""
    store, types, pushed = _pushes(metadata_path, pipeline_name)
    for push in sorted(pushed, key=lambda a: -a.id):
        models = [a for a in _producer_inputs(store, push.id, metadata_store_pb2.Event.OUTPUT)
                  if types[a.type_id] == "Model"]
        for model in models:
            for item in _producer_inputs(store, model.id, metadata_store_pb2.Event.OUTPUT):
                path = os.path.join(item.uri, "schema.pbtxt")
                if types[item.type_id] == "Schema" and os.path.exists(path):
                    return path
    return None


BUILD_KEY = "kubetfx_build_key"


@dataclasses.dataclass(frozen=True)
class Build:
    schema_file: Optional[str]    # None: SchemaGen inferred it
    served_version: str           # the Evaluator's baseline; "" when nothing was served


def build_key(config) -> str:
    """A digest of the config as the user gave it (before prepare fills in what it decides)
    and of the data files' names, sizes and modification times."""
    from kubetfx.components.example_gen import data_format

    files = []
    for path in data_format.data_files(config.data)[1]:
        try:
            stat = os.stat(path)
            files.append([str(path), stat.st_size, stat.st_mtime_ns])
        except OSError:  # a location only the cluster sees: its name is all we know here
            files.append([str(path), None, None])
    text = json.dumps({"config": config.to_dict(), "data": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def served_version(serving_dir) -> str:
    """The version served under the (local) serving directory, "" when none: the rule of
    components/serving/valid_version.py, which reads with os, so prepare can call it
    before the run's log captures what TensorFlow prints when it loads."""
    from kubetfx.components.serving import rollout_state

    return rollout_state.serving_version(serving_dir) or ""


def _string(properties, name) -> Optional[str]:
    return properties[name].string_value if name in properties else None


def recorded_build(metadata_path: str, pipeline_name: str, serving_dir, key: str) -> Optional[Build]:
    """The decisions of the run that pushed the version served now, if that run had `key`."""
    store, _, pushed = _pushes(metadata_path, pipeline_name)
    if not pushed:
        return None
    push = max(pushed, key=lambda a: a.id)
    if _string(push.custom_properties, "pushed_version") != served_version(serving_dir):
        return None  # served since by someone else (a rollback, another home's push)
    events = [e for e in store.get_events_by_artifact_ids([push.id]) if e.type == metadata_store_pb2.Event.OUTPUT]
    run_type = store.get_context_type("pipeline_run")
    runs = [c for c in store.get_contexts_by_execution(events[-1].execution_id) if c.type_id == run_type.id]
    if not runs or _string(runs[0].custom_properties, BUILD_KEY) != key:
        return None
    execution_types = {t.id: t.name for t in store.get_execution_types()}
    schema_file, served = None, ""
    for execution in store.get_executions_by_context(runs[0].id):
        kind = execution_types[execution.type_id].rsplit(".", 1)[-1]
        if kind == "ImportSchemaGen":
            schema_file = _string(execution.custom_properties, "schema_file")
        elif kind == "ServedBaseline":
            served = _string(execution.custom_properties, "served_version") or ""
    if schema_file is not None and not os.path.exists(schema_file):
        return None  # the imported schema is gone (a cleaned pipeline root): decide afresh
    return Build(schema_file=schema_file, served_version=served)


def record_build(metadata_path: str, run_id: str, key: str) -> None:
    """Keeps `key` on the run's pipeline_run context (nothing when the run never started)."""
    if not os.path.exists(metadata_path):
        return
    store = mlmd.open_store(metadata_path, writable=True)
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run is not None:
        run.custom_properties[BUILD_KEY].string_value = key
        store.put_contexts([run])
