"""A run's outcome read back from ML Metadata: each stage, its duration and key result.

Also the two rules every view of a run shares (`kubetfx run`'s summary and --json, `kubetfx
report`): the state a stage is shown in (`stage_state`: RUNNING with no live run is
interrupted) and the order of runs and stages (`runs_newest_first`, `in_run_order`: by ML
Metadata's ids, which only grow, never by create times a clock stepped back can reorder)."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from kubetfx.pipelines.record import mlmd

from kubetfx.components import stage_outputs
from kubetfx.components.evaluator import acceptance

STATE = _STATE = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.NEW: "new",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}
INTERRUPTED = "interrupted"  # recorded running, but no process holds the home's run lock


def stage_state(execution, live: bool) -> str:
    """The state to show for a stage. `live`: whether a run of the pipeline holds the home
    now (home_lock.held); when none does, a stage ML Metadata still records as RUNNING was
    left so by a killed run (SIGKILL, out of memory, a reboot): it is interrupted."""
    state = STATE.get(execution.last_known_state, "?")
    return INTERRUPTED if state == "running" and not live else state


def runs_newest_first(store, pipeline_name: str):
    """The names of the pipeline's runs, newest first. By context id: ML Metadata gives ids in
    increasing order, while create times follow the clock, which can step back (NTP, a VM
    restored from a snapshot) and put a newer run behind an older one."""
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return
    mine = {e.id for e in store.get_executions_by_context(pipeline_ctx.id)}
    for run in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: -c.id):
        if any(e.id in mine for e in store.get_executions_by_context(run.id)):
            yield run.name


def in_run_order(executions) -> list:
    """A run's executions in the order they started (ids grow; create times may step back)."""
    return sorted(executions, key=lambda e: e.id)


@dataclasses.dataclass
class StageResult:
    stage: str
    state: str
    seconds: float
    result: str


@dataclasses.dataclass
class RunSummary:
    pipeline: str
    run_id: str
    stages: list
    blessed: Optional[bool] = None
    pushed_path: Optional[str] = None
    # The pushed version was already served when the run started (a cached Pusher, or the
    # same model published again adds no version): the run changed nothing that is served.
    nothing_new: bool = False
    # The blessed model's acceptance test on the held-out test split (components/evaluator/acceptance.py).
    acceptance: Optional[dict] = None
    acceptance_refusal: Optional[str] = None  # the line saying it stopped the push

    @property
    def pushed_version(self) -> Optional[str]:
        return os.path.basename(self.pushed_path.rstrip("/")) if self.pushed_path else None

    def compare_with_served(self, served_before: str) -> "RunSummary":
        """Sets `nothing_new` from the version served before the run ("" for none)."""
        self.nothing_new = bool(served_before) and self.pushed_version == served_before
        return self

    def outcome_line(self) -> str:
        if self.nothing_new:
            return f"nothing new: serving version {self.pushed_version}"
        return f"model pushed to {self.pushed_path}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        width = max([len(s.stage) for s in self.stages] + [5])
        states = max([len(s.state) for s in self.stages] + [9])  # "interrupted" is wider
        lines = [f"Run {self.run_id} of {self.pipeline}",
                 f"  {'stage':<{width}}  {'state':<{states}} {'time':>7}  result"]
        for s in self.stages:
            lines.append(f"  {s.stage:<{width}}  {s.state:<{states}} {s.seconds:>6.1f}s  {s.result}")
        return "\n".join(lines)


def _prop(artifact, name):
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return value.int_value if value.HasField("int_value") else value.string_value


def latest_run_id(store, pipeline_name: str) -> Optional[str]:
    return next(runs_newest_first(store, pipeline_name), None)


def node_id(store, execution, pipeline_name: str = "") -> str:
    node_type = store.get_context_type("node")
    for ctx in store.get_contexts_by_execution(execution.id):
        if ctx.type_id == node_type.id:
            return ctx.name.split(".", 1)[-1]
    return "?"


def artifacts_of(store, execution_id: int, event_type=metadata_store_pb2.Event.OUTPUT) -> dict:
    """{artifact type name: artifact} of the execution's OUTPUT (or INPUT) events."""
    events = store.get_events_by_execution_ids([execution_id])
    ids = {e.artifact_id: e for e in events if e.type == event_type}
    artifacts = store.get_artifacts_by_id(list(ids))
    types = {t.id: t.name for t in store.get_artifact_types()}
    return {types[a.type_id]: a for a in artifacts}


_outputs = artifacts_of


def _error_line(execution) -> str:
    """The failure's exception line, kept on the execution by parallel_runner.record_failure."""
    import json

    from kubetfx.pipelines.record import failure

    value = execution.custom_properties.get("__execution_result__")
    if value is None or not value.string_value:
        return ""
    try:
        text = json.loads(value.string_value).get("resultMessage", "")
    except ValueError:
        return ""
    return failure.explain_text(text).error.splitlines()[0] if text else ""


def summarize(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None, *,
              live: bool) -> Optional[RunSummary]:
    """`live`: whether a run holds the home now (home_lock.held), as for stage_state."""
    if not os.path.exists(metadata_path):
        return None
    store = mlmd.open_store(metadata_path)
    run_id = run_id or latest_run_id(store, pipeline_name)
    if run_id is None:
        return None
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run_ctx is None:  # the run could not record itself (a full disk, a read-only store)
        return None
    summary = RunSummary(pipeline=pipeline_name, run_id=run_id, stages=[])
    for execution in in_run_order(store.get_executions_by_context(run_ctx.id)):
        stage = node_id(store, execution, pipeline_name)
        seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0
        outputs = _outputs(store, execution.id)
        state = stage_state(execution, live)
        result = _error_line(execution) if state == "failed" else stage_outputs.describe(stage, outputs)
        summary.stages.append(StageResult(stage, state, seconds, result))
        if "ModelBlessing" in outputs:
            summary.blessed = bool(_prop(outputs["ModelBlessing"], "blessed"))
            held_out = acceptance.read(outputs["ModelBlessing"])
            summary.acceptance = dataclasses.asdict(held_out) if held_out else None
            summary.acceptance_refusal = held_out.refusal() if held_out else None
        if "PushedModel" in outputs and _prop(outputs["PushedModel"], "pushed"):
            summary.pushed_path = _prop(outputs["PushedModel"], "pushed_destination")
    return summary
