"""Recording kubetfx's own actions (rollbacks, monitoring) in the pipeline's ML Metadata
store, beside the executions TFX wrote: one execution of a `kubetfx.*` type, associated
with the pipeline context, its inputs and outputs linked by events as TFX links its own,
so lineage queries see a rolled-back version or a drift report like any other artifact."""
from __future__ import annotations

import time
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines.record.lineage import INPUT, OUTPUT


def _value(value) -> metadata_store_pb2.Value:
    if isinstance(value, bool) or isinstance(value, int):
        return metadata_store_pb2.Value(int_value=int(value))
    if isinstance(value, float):
        return metadata_store_pb2.Value(double_value=value)
    return metadata_store_pb2.Value(string_value=str(value))


def new_artifact(store, type_name: str, uri: str, properties: Optional[dict] = None,
                 custom_properties: Optional[dict] = None) -> metadata_store_pb2.Artifact:
    """An artifact of an existing type (TFX registered it on the pipeline's first run)."""
    artifact_type = store.get_artifact_type(type_name)
    artifact = metadata_store_pb2.Artifact(type_id=artifact_type.id, uri=uri,
                                           state=metadata_store_pb2.Artifact.LIVE)
    for name, value in (properties or {}).items():
        artifact.properties[name].CopyFrom(_value(value))
    for name, value in (custom_properties or {}).items():
        artifact.custom_properties[name].CopyFrom(_value(value))
    return artifact


def _event(kind, key: str) -> metadata_store_pb2.Event:
    event = metadata_store_pb2.Event(type=kind)
    event.path.steps.add().key = key
    event.path.steps.add().index = 0
    return event


def record_execution(store, pipeline_name: str, type_name: str, properties: dict,
                     inputs: dict, outputs: dict) -> int:
    """Writes one COMPLETE execution of `type_name` with {key: artifact} inputs (existing)
    and outputs (new, written here); returns its id."""
    execution_type = metadata_store_pb2.ExecutionType(name=type_name)
    type_id = store.put_execution_type(execution_type)
    execution = metadata_store_pb2.Execution(type_id=type_id, last_known_state=metadata_store_pb2.Execution.COMPLETE)
    for name, value in properties.items():
        execution.custom_properties[name].CopyFrom(_value(value))
    execution.custom_properties["recorded_at_ms"].int_value = int(time.time() * 1000)
    pairs = [(artifact, _event(INPUT, key)) for key, artifact in inputs.items() if artifact is not None]
    pairs += [(artifact, _event(OUTPUT, key)) for key, artifact in outputs.items()]
    context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    execution_id, _, _ = store.put_execution(execution, pairs, [context] if context else [])
    return execution_id
