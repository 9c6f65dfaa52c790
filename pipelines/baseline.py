"""The schema a new run is validated against: that of the latest model this pipeline pushed.

A pipeline fed new data (`--data`) infers a schema on its first run; from then on, new data
must match what the served model was trained on, or ExampleValidator stops the run."""
from __future__ import annotations

import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines import mlmd


def _producer_inputs(store, artifact_id: int, event_type) -> list:
    """Input artifacts of the execution that has `artifact_id` as an event of `event_type`."""
    events = [e for e in store.get_events_by_artifact_ids([artifact_id]) if e.type == event_type]
    if not events:
        return []
    inputs = [e.artifact_id for e in store.get_events_by_execution_ids([events[-1].execution_id])
              if e.type == metadata_store_pb2.Event.INPUT]
    return store.get_artifacts_by_id(inputs)


def latest_pushed_schema(metadata_path: str, pipeline_name: str) -> Optional[str]:
    """Path of the schema.pbtxt the latest pushed model of the pipeline was trained with."""
    if not os.path.exists(metadata_path):
        return None
    store = mlmd.open_store(metadata_path)
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return None
    types = {t.id: t.name for t in store.get_artifact_types()}
    artifacts = store.get_artifacts_by_context(pipeline.id)
    pushed = [a for a in artifacts if types[a.type_id] == "PushedModel"
              and a.custom_properties.get("pushed", metadata_store_pb2.Value()).int_value == 1]
    for push in sorted(pushed, key=lambda a: -a.id):
        models = [a for a in _producer_inputs(store, push.id, metadata_store_pb2.Event.OUTPUT)
                  if types[a.type_id] == "Model"]
        for model in models:
            for item in _producer_inputs(store, model.id, metadata_store_pb2.Event.OUTPUT):
                path = os.path.join(item.uri, "schema.pbtxt")
                if types[item.type_id] == "Schema" and os.path.exists(path):
                    return path
    return None
