"""A run as ML Metadata recorded it: its stages in order, each with state, times, input and
output artifacts, and, for a failed stage, the error kept on its execution."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines.record import mlmd, summary

# TFX 1.16 tfx/orchestration/portable/mlmd/execution_lib.py _EXECUTION_RESULT
EXECUTION_RESULT = "__execution_result__"


class RunNotFound(LookupError):
    """No such run (or no metadata) for the pipeline in this home."""


@dataclasses.dataclass
class StageRecord:
    node_id: str
    state: str                 # complete, cached, failed, running, interrupted, canceled
    started: float             # seconds since the epoch
    seconds: float
    inputs: dict               # artifact type name -> MLMD artifact
    outputs: dict
    error: Optional[str] = None  # the failure's formatted traceback, when recorded
    module_file: Optional[str] = None  # basename of a user's module file the stage ran

    def prop(self, type_name: str, name: str, *, inputs: bool = False):
        artifacts = self.inputs if inputs else self.outputs
        artifact = artifacts.get(type_name)
        if artifact is None or name not in artifact.custom_properties:
            return None
        value = artifact.custom_properties[name]
        return value.int_value if value.HasField("int_value") else value.string_value


@dataclasses.dataclass
class RunRecord:
    pipeline: str
    run_id: str
    metadata_path: str
    stages: list

    def stage(self, suffix: str) -> Optional[StageRecord]:
        """The stage whose node id ends with `suffix` (CsvExampleGen for "ExampleGen")."""
        return next((s for s in self.stages if s.node_id.endswith(suffix)), None)

    def output(self, type_name: str):
        """The first output artifact of that type in the run, with its stage."""
        for stage in self.stages:
            if type_name in stage.outputs:
                return stage, stage.outputs[type_name]
        return None, None

    @property
    def interrupted(self) -> Optional[StageRecord]:
        return next((s for s in self.stages if s.state == INTERRUPTED), None)

    @property
    def failed(self) -> Optional[StageRecord]:
        return next((s for s in self.stages if s.state == "failed"), None)


def _error(execution) -> Optional[str]:
    value = execution.custom_properties.get(EXECUTION_RESULT)
    if value is None or not value.string_value:
        return None
    try:
        return json.loads(value.string_value).get("resultMessage")
    except ValueError:
        return value.string_value


def _module_file(execution) -> Optional[str]:
    # TFX records a packaged module file as "module@path/to/user_code.whl" (module_path).
    value = execution.custom_properties.get("module_path")
    return value.string_value.split("@", 1)[0] + ".py" if value is not None and value.string_value else None


def run_ids(metadata_path: str, pipeline: str) -> list:
    """The runs of the pipeline recorded in this store, newest first."""
    return list(summary.runs_newest_first(mlmd.open_store(metadata_path), pipeline))


INTERRUPTED = summary.INTERRUPTED


def read(metadata_path: str, pipeline: str, run_id: Optional[str] = None, *, live: bool = True) -> RunRecord:
    """`live`: whether a run of the pipeline holds the home now (home_lock.held); when none
    does, a stage ML Metadata still records as running was interrupted."""
    if not os.path.exists(metadata_path):
        raise RunNotFound(f"no runs of pipeline {pipeline!r}: {metadata_path} does not exist")
    store = mlmd.open_store(metadata_path)
    known = run_ids(metadata_path, pipeline)
    run_id = run_id or (known[0] if known else None)
    if run_id is None or run_id not in known:
        recent = ", ".join(known[:5]) or "none"
        raise RunNotFound(f"pipeline {pipeline!r} has no run {run_id!r} in {metadata_path}; recent runs: {recent}"
                          if run_id else f"pipeline {pipeline!r} has no runs in {metadata_path}")
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    stages = []
    for execution in summary.in_run_order(store.get_executions_by_context(run_ctx.id)):
        stages.append(StageRecord(
            node_id=summary.node_id(store, execution, pipeline),
            state=summary.stage_state(execution, live),
            started=execution.create_time_since_epoch / 1000.0,
            seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0,
            inputs=summary.artifacts_of(store, execution.id, metadata_store_pb2.Event.INPUT),
            outputs=summary.artifacts_of(store, execution.id, metadata_store_pb2.Event.OUTPUT),
            error=_error(execution), module_file=_module_file(execution)))
    return RunRecord(pipeline=pipeline, run_id=run_id, metadata_path=str(metadata_path), stages=stages)
