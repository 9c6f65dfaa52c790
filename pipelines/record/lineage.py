"""Walking ML Metadata lineage by event keys: who produced an artifact, what an execution
read and wrote. TFX records each input and output with its component key as the event's
first path step (`model`, `baseline_model`, `examples`...), so "the model an Evaluator
judged" is the INPUT under key `model`, never the baseline it was compared with."""
from __future__ import annotations

from typing import Optional

from ml_metadata.proto import metadata_store_pb2

INPUT = metadata_store_pb2.Event.INPUT
OUTPUT = metadata_store_pb2.Event.OUTPUT


def _key(event) -> str:
    return event.path.steps[0].key if event.path.steps else ""


class Lineage:
    """Read helpers over one store; type names are looked up once."""

    def __init__(self, store):
        self.store = store
        self.artifact_types = {t.id: t.name for t in store.get_artifact_types()}
        self.execution_types = {t.id: t.name for t in store.get_execution_types()}

    def type_of(self, artifact) -> str:
        return self.artifact_types.get(artifact.type_id, "?")

    def execution_type_of(self, execution) -> str:
        return self.execution_types.get(execution.type_id, "?")

    def producer(self, artifact_id: int):
        """The execution that wrote the artifact (its first OUTPUT event), or None."""
        events = [e for e in self.store.get_events_by_artifact_ids([artifact_id]) if e.type == OUTPUT]
        if not events:
            return None
        return self.store.get_executions_by_id([events[0].execution_id])[0]

    def consumers(self, artifact_id: int, key: Optional[str] = None) -> list:
        """Executions that read the artifact (under `key` when given), oldest first."""
        ids = sorted({e.execution_id for e in self.store.get_events_by_artifact_ids([artifact_id])
                      if e.type == INPUT and (key is None or _key(e) == key)})
        return self.store.get_executions_by_id(ids) if ids else []

    def _artifacts(self, execution_id: int, event_type) -> dict:
        events = [e for e in self.store.get_events_by_execution_ids([execution_id]) if e.type == event_type]
        by_id = {a.id: a for a in self.store.get_artifacts_by_id([e.artifact_id for e in events])}
        found: dict = {}
        for event in events:
            found.setdefault(_key(event), []).append(by_id[event.artifact_id])
        return found

    def inputs(self, execution_id: int) -> dict:
        """{event key: [artifacts]} the execution read."""
        return self._artifacts(execution_id, INPUT)

    def outputs(self, execution_id: int) -> dict:
        """{event key: [artifacts]} the execution wrote."""
        return self._artifacts(execution_id, OUTPUT)

    def input(self, execution_id: int, key: str):
        found = self.inputs(execution_id).get(key)
        return found[0] if found else None

    def output(self, execution_id: int, key: str):
        found = self.outputs(execution_id).get(key)
        return found[0] if found else None


def prop(item, name: str):
    """A custom property's int, double or string value (None when absent)."""
    if name not in item.custom_properties:
        return None
    value = item.custom_properties[name]
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("int_value", "double_value", "string_value") else None
